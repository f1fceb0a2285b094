//! The registry of every diagnostic code: its number, default severity, a title and the long
//! explanation that `hpl explain` prints (what it means, an example, and the fix).
//! Codes are stable: a code is never reused for another meaning.

use super::Severity;

macro_rules! codes {
    ($( $variant:ident = $code:literal, $severity:ident, $title:literal, $explanation:literal; )*) => {
        /// A diagnostic code. The numbering groups the stages: 00xx syntax, 01xx names and
        /// declarations, 02xx versions, 03xx conditions, 04xx conflicts, 05xx windows and guards.
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
        pub enum Code { $( $variant, )* }

        impl Code {
            pub const ALL: &'static [Code] = &[ $( Code::$variant, )* ];

            /// `HPL0401`
            pub fn as_str(self) -> &'static str {
                match self { $( Code::$variant => $code, )* }
            }

            pub fn severity(self) -> Severity {
                match self { $( Code::$variant => Severity::$severity, )* }
            }

            pub fn title(self) -> &'static str {
                match self { $( Code::$variant => $title, )* }
            }

            pub fn explanation(self) -> &'static str {
                match self { $( Code::$variant => $explanation, )* }
            }
        }
    };
}

impl Code {
    /// Looks a code up by its text, case-insensitively (`hpl explain hpl0401`).
    pub fn parse(text: &str) -> Option<Code> {
        Code::ALL
            .iter()
            .copied()
            .find(|c| c.as_str().eq_ignore_ascii_case(text.trim()))
    }
}

impl std::fmt::Display for Code {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

codes! {
    Syntax = "HPL0001", Error, "syntax error",
"The text does not follow the hpl grammar at this point. The parser recovers at the next
declaration or statement, so every syntax error of a file is reported in one run.

Example:

    policy baseline version 12 {
      scope org
      requre brew:git        # typo in the keyword
    }

Fix: correct the statement. Each statement starts on its own line with one of
scope, mode, require, allow, deny, deny!, pin, toolchain, window or guard.";

    Unclosed = "HPL0002", Error, "unclosed delimiter",
"A `{`, `[` or `(` was opened and never closed before the next declaration began.

Example:

    policy baseline version 12 {
      scope org
    policy platform version 4 {     # the `}` of baseline is missing

Fix: add the closing delimiter.";

    UnknownScope = "HPL0101", Error, "unknown scope",
"A policy binds to a scope that is not declared. Scopes are declared with `department`
(with nested `team`s), `environment` and `device_group`; `org` is always there.

Example:

    scope team platfrom

Fix: use a declared name (the diagnostic suggests the closest one) or declare the scope.";

    UnknownSet = "HPL0102", Error, "unknown package set",
"A rule or set names a package set that is not declared. Package references are written
`manager:name`; a bare name is a set.

Example:

    require core_clis        # the set is called core_cli

Fix: use a declared set, declare it with `set NAME = [..]`, or write `manager:name`.";

    UnknownManager = "HPL0103", Error, "unknown package manager",
"A package reference names a manager that is not in the catalog (the stdlib's 28 Helm
managers and their aliases, such as `brew` for `homebrew_formula`).

Example:

    require homebrw:git

Fix: use a manager id or alias from the catalog; `hpl explain HPL0103` lists none, but the
diagnostic suggests the closest one.";

    UnknownGuardTarget = "HPL0104", Error, "unknown guard target",
"`guard` names an action that is not guarded. Guarded actions are `os_update`,
`xcode_clt`, `firmware`, `rosetta`, and every manager the catalog marks `guarded`.

Example:

    guard os_updates confirm

Fix: use one of the guarded actions (the diagnostic suggests the closest).";

    InvalidValue = "HPL0105", Error, "invalid value",
"A keyword argument has a value outside its fixed set: a mode that is not observe, assist or
enforce; a guard level that is not confirm, deny or auto; a day that is not mon..sun.

Example:

    mode enforced

Fix: use one of the listed values.";

    InvalidTarget = "HPL0106", Error, "target not allowed here",
"The rule needs one exact package but got a glob (`npm:*`) or a set where that makes no sense:
`require` and `pin` need exact packages (a set of exact packages is fine), and a glob must end
the name (`npm:@types/*`).

Example:

    require npm:*

Fix: name the packages, or use `allow`/`deny` for globs.";

    DuplicateDeclaration = "HPL0110", Error, "declared twice",
"A scope, set, tenant or manager name is declared more than once. Scope names must be unique
across levels too, so that `team platform` and `device_group platform` cannot be confused.

Example:

    team platform
    device_group platform

Fix: rename or remove one of the declarations.";

    DuplicatePolicy = "HPL0111", Error, "duplicate policy id",
"Two policies share an id. Policy ids identify rules in records, audit events and bundles;
they must be unique across the whole policy directory.

Example:

    policy baseline version 12 { .. }
    policy baseline version 13 { .. }

Fix: rename one policy, or merge them and bump the version.";

    PolicyWithoutScope = "HPL0112", Error, "policy with no scope",
"A policy has no `scope` line, so it would apply to no device.

Example:

    policy mobile version 1 {
      require brew:fastlane
    }

Fix: add `scope org`, `scope department ..`, `scope team ..`, `scope environment ..` or
`scope device_group ..`.";

    EmptySet = "HPL0113", Error, "empty package set",
"A package set has no members; a rule over it would do nothing.

Example:

    set core_cli = []

Fix: add members or remove the set.";

    MissingTenant = "HPL0114", Error, "missing tenant",
"A policy directory must declare its tenant exactly once with `tenant NAME`; the tenant id is
written into every bundle, record and audit event.

Fix: add `tenant acme` to one file (conventionally scopes.hpl).";

    DuplicateSetting = "HPL0115", Error, "setting given twice",
"A policy gives `mode` more than once, or a rule gives the same clause twice.

Example:

    mode assist
    mode enforce

Fix: keep one.";

    InvalidConstraint = "HPL0201", Error, "invalid version constraint",
"A version constraint cannot be read with the manager's version scheme. Each manager has a
scheme: semver (npm, pnpm, yarn, cargo: `^1.4`, `>=2 <3`, `1.2.x`), pep440 (pip, pipx,
poetry: `>=3.11,<3.13`, `~=3.12`, `==3.12.*`), rubygems (`~> 7.1`), homebrew (`>= 2.40`,
`1.1.1w_1`), rustup (`stable`, `nightly-2026-01-01`, `>= 1.80`), macos (`>= 15.3`) and
dotted (`^22`, `3.12.*`).

Example:

    require pip:django ~> 5.0      # `~>` is RubyGems syntax

Fix: write the constraint in the manager's scheme (the help line shows its syntax).";

    UnknownField = "HPL0301", Error, "unknown device field",
"A `when` condition reads a field that devices do not report. The fields are device.id,
device.tenant, device.arch, device.os.name, device.os.version, device.ring,
device.department, device.team, device.environment, device.groups and device.facts[\"..\"].

Example:

    when device.architecture == \"arm64\"

Fix: use one of the fields (the diagnostic suggests the closest), or read free-form facts
with device.facts[\"name\"].";

    TypeMismatch = "HPL0302", Error, "type mismatch",
"An operator or function got a value of the wrong type, e.g. comparing a string with an int or
using `in` on something that is not a list or map. Conditions have CEL's types: bool, int,
string, version, list, map; entries of device.facts are dynamic.

Example:

    when device.arch == 64

Fix: compare like with like; convert versions with version(\"..\").";

    WrongArity = "HPL0303", Error, "wrong number of arguments",
"A function or macro was called with the wrong number of arguments.

Example:

    when size()

Fix: pass the arguments the function takes (see docs/language.md, Conditions).";

    UnknownFunction = "HPL0304", Error, "unknown function",
"A condition calls a function or method that hpl does not provide. Functions: size, has,
version, string, int; methods: startsWith, endsWith, contains, size; macros: all, exists,
exists_one, filter, map.

Example:

    when device.arch.startswith(\"arm\")

Fix: use a listed function (the diagnostic suggests the closest).";

    ConditionNotBool = "HPL0305", Error, "condition is not a bool",
"A `when` condition must be a bool.

Example:

    when device.arch

Fix: compare it: `when device.arch == \"arm64\"`.";

    ConditionTooComplex = "HPL0306", Error, "condition beyond a runtime limit",
"A condition must stay within what every device evaluates in bounded time, memory and stack:
parentheses and lists nested at most 32 deep, at most 256 operators in one statement, list
macros (`all`, `exists`, `exists_one`, `filter`, `map`) nested at most 4 deep, and a worst case
of 10,000,000 instructions (each macro body counted for 1,024 elements: two nested macros fit,
three do not), 100,000,000 for all conditions together. `hpl check` runs the runtime's own
verifier on each condition, so a policy that checks also builds and loads.

Example:

    when device.groups.all(a, device.groups.all(b, device.groups.all(c,
         device.groups.all(d, device.groups.all(e, a == e))))))

Fix: split the condition, or write it with fewer nested macros.";

    RequireDenyConflict = "HPL0401", Error, "required and denied at the same scope",
"The same package is required and denied by rules bound to the same scope. Deny wins at
equal level, so the requirement can never be met and every device of the scope would be
non-compliant.

Example:

    policy a version 1 { scope team platform  require brew:telnet }
    policy b version 1 { scope team platform  deny brew:telnet }

Fix: remove one rule, or move one to the scope it is meant for.";

    PinOutsideRange = "HPL0402", Error, "pin outside the allowed range",
"A pin selects versions that a require or allow rule on the same scope path rules out, so a
device that follows the pin is out of range, and one in range breaks the pin.

Example:

    require mise:python >= 3.13     # org
    pin     mise:python 3.12.*      # team platform

Fix: move the pin into the range, or widen the range on that scope.";

    ConflictingPins = "HPL0403", Error, "two different pins at one scope",
"One package is pinned to two different versions by rules bound to the same scope; the
device cannot satisfy both.

Example:

    pin brew:terraform = 1.9.8
    pin brew:terraform = 1.10.0

Fix: keep one pin.";

    FinalDenyOverridden = "HPL0404", Error, "allowed or required despite a final deny",
"A `deny!` is final: no scope may allow or require the package. An allow or require of it
at the same or a more specific scope is an error, because at run time the final deny decides
before every other rule and the allow would silently do nothing.

A conditional final deny only provably meets a rule under the same condition: under different
conditions the two may never apply to the same device, so nothing is reported. An unconditional
final deny covers every condition. A *less* specific require (an org-wide require beside a team's
`deny!`) is fine: on the team's devices the package is simply forbidden and the require skipped.

Example:

    deny!  npm:event-stream = 3.3.6    # org
    allow  npm:event-stream            # team mobile

Fix: remove the allow, or narrow it to versions outside the denied range.";

    AllowShadowedByDeny = "HPL0405", Warning, "allow never applies",
"An allow and a deny of the same package with the same matcher are bound to the same scope,
and every scope the allow's policy is bound to carries the deny too. Deny wins at equal
level and matcher, so the allow never applies. (A more specific matcher is not shadowed:
`allow npm:@acme/*` beside `deny npm:*` applies to the @acme packages.)

Example:

    allow brew:telnet
    deny  brew:telnet

Fix: remove one of them; to allow the package for a subset of devices, bind the allow to a
more specific scope.";

    Overridden = "HPL0406", Note, "rule overridden by a more specific scope",
"For traceability: the rule is overridden for devices of a more specific scope by a rule with
a different effect. This is how layered policy is meant to work; the note shows where.

Example:

    deny  brew:telnet     # org
    allow brew:telnet     # device_group build_agents

Nothing to fix.";

    RedundantRule = "HPL0407", Warning, "redundant rule",
"The rule repeats, at the same or a more specific scope, exactly what a rule on a less
specific scope already says for the same devices. It changes nothing and will drift.

Example:

    require brew:git          # org
    require brew:git          # team platform

Fix: remove the more specific copy.";

    GroupPinsDiffer = "HPL0408", Warning, "device groups pin differently",
"Two device groups pin the same package to different versions. Both are at the most specific
level, so a device in both groups gets the pin chosen by precedence (the higher version is not
preferred), which is rarely what either group's owner meant.

Example:

    pin brew:terraform = 1.9.8     # device_group build_agents
    pin brew:terraform = 1.10.0    # device_group release_agents

Fix: pin the same version, or make the groups disjoint.";

    GuardAutomatic = "HPL0409", Error, "guarded action made automatic",
"Guarded actions (OS updates, Xcode Command Line Tools, firmware, Rosetta, and managers the
catalog marks guarded) always need explicit confirmation: the built-in safety floor. A policy
can make them stricter (`deny`), never automatic.

Example:

    guard os_update auto

Fix: use `guard os_update confirm` or `guard os_update deny`.";

    InvalidWindow = "HPL0501", Error, "invalid upgrade window",
"An upgrade window has an invalid time (`25:00`, `10:75`) or day range.

Example:

    window mon-fri 01:00-25:00 \"Europe/Berlin\"

Fix: use 24-hour times from 00:00 to 24:00 and days mon..sun.";

    WindowNeverOpens = "HPL0502", Warning, "window never opens",
"The upgrade window is empty (start equals end), so auto-remediation never runs.

Example:

    window mon-fri 02:00-02:00 \"Europe/Berlin\"

Fix: give the window a duration.";

    WindowTooShort = "HPL0503", Warning, "window shorter than the check-in interval",
"The upgrade window is shorter than the agent's check-in interval (60 minutes unless
`--check-in-interval` says otherwise), so an agent may never check in while it is open.

Example:

    window sat 03:00-03:15 \"UTC\"

Fix: make the window at least one check-in interval long.";

    UnknownTimeZone = "HPL0504", Error, "unknown time zone",
"The window's time zone is not an IANA time zone name. Use names like \"Europe/Berlin\",
\"America/Los_Angeles\" or \"UTC\", or `local` for the device's own zone.

Example:

    window mon-fri 01:00-05:00 \"Europe/Berlinn\"

Fix: correct the name (the diagnostic suggests the closest).";
}
