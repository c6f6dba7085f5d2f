#!/usr/bin/env python3
"""Renders helm/shroud offline with Helm's engine (helm-python-sdk) and prints the
objects as a JSON list.

    tests/helm/render.py CHART VALUES_JSON
"""

import json
import sys

from check_chart import NAMESPACE, RELEASE, fail, need


def main():
    if len(sys.argv) != 3:
        fail("usage: render.py CHART VALUES_JSON")
    helm = need("helm_python", "helm-python-sdk")
    yaml = need("yaml", "pyyaml")
    with helm.Chart.load(sys.argv[1]) as c:
        rendered = c.render(json.loads(sys.argv[2]), name=RELEASE, namespace=NAMESPACE, is_install=True)
    objects = [doc for path, text in sorted(rendered.items()) if path.endswith((".yaml", ".yml"))
               for doc in yaml.safe_load_all(text) if doc]
    json.dump(objects, sys.stdout)


if __name__ == "__main__":
    main()
