//! What the kubelet runs for a container without `command`: the image's
//! ENTRYPOINT followed by the container's `args`, or by the image's CMD when the
//! container has no `args` ("Define a Command and Arguments for a Container").

/// The image configuration's `Entrypoint` and `Cmd`.
#[derive(Clone, Debug, Default, PartialEq, Eq, Hash)]
pub struct ImageCommand {
    /// `Entrypoint` (empty when unset).
    pub entrypoint: Vec<String>,
    /// `Cmd` (empty when unset).
    pub cmd: Vec<String>,
}

impl ImageCommand {
    /// The command line for a container without `command` whose `args` are
    /// `args` (an empty list is the same as none, as in the API). `None` when it
    /// would be empty: the image has neither ENTRYPOINT nor CMD and the pod no args.
    pub fn command_line(&self, args: Option<&[String]>) -> Option<Vec<String>> {
        let tail = match args.filter(|a| !a.is_empty()) {
            Some(a) => a,
            None => &self.cmd,
        };
        let line: Vec<String> = self.entrypoint.iter().chain(tail).cloned().collect();
        (!line.is_empty()).then_some(line)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn v(s: &[&str]) -> Vec<String> {
        s.iter().map(|x| x.to_string()).collect()
    }

    fn img(entrypoint: &[&str], cmd: &[&str]) -> ImageCommand {
        ImageCommand {
            entrypoint: v(entrypoint),
            cmd: v(cmd),
        }
    }

    #[test]
    fn kubelet_cases_without_command() {
        let args = v(&["-x"]);
        // No args: ENTRYPOINT + CMD.
        assert_eq!(
            img(&["/ep"], &["c1"]).command_line(None),
            Some(v(&["/ep", "c1"]))
        );
        // Args: ENTRYPOINT + args; CMD is dropped.
        assert_eq!(
            img(&["/ep"], &["c1"]).command_line(Some(&args)),
            Some(v(&["/ep", "-x"]))
        );
        // Empty ENTRYPOINT: CMD is the command, args replace it.
        assert_eq!(
            img(&[], &["/bin/sh", "-c", "x"]).command_line(None),
            Some(v(&["/bin/sh", "-c", "x"]))
        );
        assert_eq!(
            img(&[], &["/c"]).command_line(Some(&args)),
            Some(v(&["-x"]))
        );
        // Args without CMD.
        assert_eq!(
            img(&["/ep"], &[]).command_line(Some(&args)),
            Some(v(&["/ep", "-x"]))
        );
        // `args: []` is no args.
        assert_eq!(
            img(&["/ep"], &["c"]).command_line(Some(&[])),
            Some(v(&["/ep", "c"]))
        );
        // Nothing at all.
        assert_eq!(img(&[], &[]).command_line(None), None);
    }
}
