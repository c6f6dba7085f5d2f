#!/bin/busybox sh
# The example workload: reads the credentials shroud rendered and prints them in
# several encodings, as a careless app or a debug log line would. Run under
# `shroud exec` or `shroud run`, every one of them comes out as [REDACTED].
#
#   SECRETS_DIR  where shroud renders (default /run/shroud)
#   APP_EXIT     the exit status to end with (default 0), to show it is propagated
set -eu
dir=${SECRETS_DIR:-/run/shroud}

# db is rendered as JSON: {"username": "...", "password": "...", ...}
json_field() { sed -n "s/.*\"$1\" *: *\"\\([^\"]*\\)\".*/\\1/p" "$dir/db" | head -n 1; }
user=$(json_field username)
pw=$(json_field password)
api_key=$(cat "$dir/api-key")
[ -n "$user" ] && [ -n "$pw" ] && [ -n "$api_key" ] || { echo "app: a credential is missing" >&2; exit 70; }

# Percent-encodes every byte but [A-Za-z0-9-_.~].
urlencode() {
  for h in $(printf %s "$1" | od -An -tx1 -v); do
    case $h in
      2d|2e|3[0-9]|4[1-9a-f]|5[0-9a]|5f|6[1-9a-f]|7[0-9a]|7e) printf "\\x$h" ;;
      *) printf '%%%s' "$(echo "$h" | tr a-f A-F)" ;;
    esac
  done
}
jsonescape() { printf %s "$1" | sed 's/\\/\\\\/g; s/"/\\"/g'; }

echo "app: started; password is ${#pw} bytes, api key ${#api_key} bytes"
echo "app: raw:        user=$user password=$pw"
echo "app: base64:     $(printf %s "$pw" | base64)"
echo "app: basic auth: Authorization: Basic $(printf '%s:%s' "$user" "$pw" | base64 | tr -d '\n')"
echo "app: json:       {\"user\":\"$(jsonescape "$user")\",\"password\":\"$(jsonescape "$pw")\",\"api_key\":\"$(jsonescape "$api_key")\"}"
echo "app: url:        postgres://$(urlencode "$user"):$(urlencode "$pw")@127.0.0.1/app?api_key=$(urlencode "$api_key")"
echo "app: api key:    $api_key"
echo "app: key base64: $(printf 'key=%s' "$api_key" | base64 | tr -d '\n')"
echo "app: to stderr:  $pw" >&2
printf 'app: a prompt without a newline: %s' "$pw"
echo
echo "app: done, exiting with ${APP_EXIT:-0}"
exit "${APP_EXIT:-0}"
