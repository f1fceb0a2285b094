#!/usr/bin/env python3
"""Generates the example device inventories (hpl.inventory.v1) for examples/acme.

Each device starts from what its scopes require, gets a few hundred ordinary packages that
the policies allow, and then the changes that make it the example it is (see DEVICES).
Deterministic: run it again and the files do not change.

    python3 examples/devices/generate.py
"""
import json, os, random

HERE = os.path.dirname(os.path.abspath(__file__))

BREW_FILLER = """ack aom apr apr-util asciinema autoconf automake bash bash-completion bat bdw-gc boost brotli c-ares
ca-certificates cairo cmake coreutils ctags diff-so-fancy dos2unix dust entr exa fd ffmpeg fish flac fontconfig
freetype fribidi fzf gawk gd gdbm gettext giflib git-delta glib gmp gnu-sed gnu-tar gnutls go-task graphite2
graphviz grep gts guile harfbuzz highlight htop httpie hub hyperfine icu4c imagemagick isl jansson jemalloc jpeg
jpeg-turbo jpeg-xl lame lazygit less libassuan libev libevent libffi libgcrypt libgpg-error libheif libidn2
libksba liblinear libnghttp2 libpng libraw librsvg libsodium libssh libssh2 libtasn1 libtiff libtool libunistring
libuv libvmaf libvorbis libvpx libx11 libxau libxcb libxdmcp libxext libxrender libyaml little-cms2 lua lz4 lzo
m4 make mpdecimal mpfr ncdu ncurses neovim nettle nghttp2 ninja node-build nspr nss oniguruma openexr openjpeg
openldap openssl@3 opus p11-kit pcre pcre2 perl pinentry pixman pkg-config procs protobuf python-packaging
readline reattach-to-user-namespace ripgrep rtmpdump rust sd shared-mime-info snappy sqlite starship tcl-tk
tealdeer telnet-free tig tmux tokei tree unbound uv watch webp x264 x265 xz yq zlib zoxide zsh zstd""".split()

NPM_FILLER = """@angular/cli @vue/cli serve http-server nodemon ts-node tsx yarn npm-check-updates vercel netlify-cli
firebase-tools json-server concurrently rimraf cross-env dotenv-cli lerna nx turbo vite esbuild rollup webpack-cli
@biomejs/biome svgo prisma wrangler""".split()

PIP_FILLER = """requests urllib3 certifi idna charset-normalizer six python-dateutil pytz pyyaml click jinja2 markupsafe
attrs packaging pyparsing setuptools wheel pip virtualenv platformdirs filelock tomli typing-extensions
rich pygments httpx anyio sniffio h11 pydantic pydantic-core annotated-types""".split()

CASK_FILLER = """iterm2 visual-studio-code rectangle raycast alfred slack zoom notion obsidian spotify vlc
the-unarchiver appcleaner stats keka docker-toolbox postman insomnia tableplus dbeaver-community""".split()

def vers(name, salt=""):
    r = random.Random(name + salt)
    return f"{r.randint(0, 9)}.{r.randint(0, 30)}.{r.randint(0, 12)}"

def manager(id, packages, version=None):
    m = {"id": id, "packages": [{"name": n, "versions": v if isinstance(v, list) else [v], "pinned": False}
                                for n, v in sorted(packages.items())]}
    if version:
        m["version"] = version
    return m

def base(seed):
    """An org-compliant device: the baseline's requirements and a few hundred allowed packages."""
    r = random.Random(seed)
    brew = {n: vers(n) for n in r.sample(BREW_FILLER, 150)}
    brew.update({"git": "2.47.1", "jq": "1.7.1", "gh": "2.62.0", "curl": "8.11.0", "wget": "1.25.0",
                 "mise": "2024.11.37", "gnupg": "2.4.7", "openssh": "9.9p1"})
    cask = {n: vers(n) for n in r.sample(CASK_FILLER, 12)}
    cask.update({"1password": "8.10.54", "google-chrome": "131.0.6778.86"})
    npm = {n: vers(n) for n in r.sample(NPM_FILLER, 18)}
    pip = {n: vers(n) for n in r.sample(PIP_FILLER, 25)}
    mise = {"node": "22.11.0", "python": "3.12.7"}
    return {"homebrew_formula": brew, "homebrew_cask": cask, "npm": npm, "pip": pip, "mise": mise}

ENGINEERING = {"homebrew_formula": {"colima": "0.8.1", "docker": "27.3.1", "docker-compose": "2.30.3",
                                    "direnv": "2.35.0", "pre-commit": "4.0.1", "shellcheck": "0.10.0"},
               "mise": {"go": "1.23.3"}, "rustup": {"stable": "1.83.0"},
               "cargo": {"cargo-nextest": "0.9.85"}, "pipx": {"poetry": "1.8.4"}, "npm": {"pnpm": "9.14.2"}}
PLATFORM = {"homebrew_formula": {"terraform": "1.9.8", "kubectl": "1.31.3", "helm": "3.16.3", "awscli": "2.22.5",
                                 "k9s": "0.32.7"}, "cargo": {"cargo-deny": "0.16.2"}}
TOOLCHAINS = [{"name": "python", "version": "3.12.7", "source": "mise", "path": "~/.local/share/mise/installs/python/3.12.7/bin/python3"},
              {"name": "node", "version": "22.11.0", "source": "mise", "path": "~/.local/share/mise/installs/node/22.11.0/bin/node"}]

def merge(*layers):
    out = {}
    for layer in layers:
        for m, pkgs in layer.items():
            out.setdefault(m, {}).update(pkgs)
    return out

def device(id, scopes, managers, *, ring="broad", arch="arm64", os_version="15.3.2", facts=None,
           collected_at="2026-11-29T01:00:00Z", toolchains=TOOLCHAINS, drop=()):
    return {
        "schema": "hpl.inventory.v1",
        "tenant_id": "acme",
        "device_id": id,
        "collected_at": collected_at,
        "scopes": scopes,
        "ring": ring,
        "device": {"arch": arch, "os": {"name": "macos", "version": os_version}, "facts": facts or {}},
        "managers": [manager(m, p, version={"homebrew_formula": "4.4.8", "homebrew_cask": "4.4.8"}.get(m))
                     for m, p in sorted(managers.items()) if m not in drop],
        "toolchains": toolchains,
    }

def without(d, manager, *names):
    d = {m: dict(p) for m, p in d.items()}
    for n in names:
        d.get(manager, {}).pop(n, None)
    return d

DEVICES = {}

# 1. Compliant: a designer's laptop that has everything its scopes ask for.
design = merge(base("design-01"), {
    "homebrew_cask": {"figma": "124.6.5", "sketch": "101.3", "zeplin": "6.7.2", "font-inter": "4.1",
                      "adobe-creative-cloud": "6.4.0.361"},
    "setapp": {"cleanshot-x": "4.7.4"}})
DEVICES["design-compliant"] = device("C02DSGN001", {"department": "design", "team": "brand", "environment": "laptop"},
                                     without(design, "homebrew_formula", "gh"))

# 2. Warning: warn-severity rules only (gh is denied with `warn` in design; Chrome is a `warn` require).
DEVICES["design-warning"] = device("C02DSGN002", {"department": "design", "team": "product_design", "environment": "laptop"},
                                   without(design, "homebrew_cask", "google-chrome"))

# 3. Non-compliant: a platform engineer's laptop with one of every drift category.
platform = merge(base("platform-01"), ENGINEERING, PLATFORM, {
    "homebrew_formula": {"terraform": "1.10.0",        # pin_mismatch (team pin = 1.9.8)
                         "kubectl": "1.29.9",          # version_out_of_range (>= 1.30)
                         "terraform-docs": "0.16.0",   # present_denied by a deny with a range (< 0.17)
                         "telnet": "0.17"}})           # present_denied by the org's cleartext set
DEVICES["platform-noncompliant"] = device(
    "C02PLAT001", {"department": "engineering", "team": "platform", "environment": "laptop"},
    without(platform, "homebrew_formula", "k9s"),      # missing_required
    toolchains=TOOLCHAINS + [{"name": "python", "version": "3.9.6", "source": "unmanaged", "path": "/usr/bin/python3"}])

# 4. Compliant build agent: the device group allows telnet over the org deny (more specific
#    level wins), and the CI environment denies Chrome and 1Password over the org requires.
agent = merge(without(base("agent-01"), "homebrew_cask", "google-chrome", "1password"), {
    "homebrew_formula": {"telnet": "0.17", "git-lfs": "3.6.0", "xcbeautify": "2.16.0", "ccache": "4.10.2",
                         "terraform": "1.9.8"},
    "npm": {"pnpm": "9.14.2"}, "cargo": {"sccache": "0.9.0"}, "mise": {"node": "22.11.0"}})
DEVICES["build-agent-compliant"] = device("MINI-CI-07", {"environment": "ci", "device_groups": ["build_agents"]}, agent)

# 5. Unknown: a mobile laptop whose versions cannot all be read and whose inventory lacks RubyGems.
mobile = merge(base("mobile-01"), ENGINEERING, {
    "homebrew_formula": {"fastlane": "2.225.0", "cocoapods": "1.16.2", "xcbeautify": "2.16.0", "swiftlint": "0.57.1",
                         "openjdk@17": "17.0.13+11-custom"},   # unparseable for a range? no range: fine
    "homebrew_cask": {"android-studio": "2024.2.1.12"}})
mobile["mise"]["python"] = "ref:3.12-branch"                   # unparseable: the pin cannot be checked
mobile_devices = without(mobile, "homebrew_cask", "docker")
DEVICES["mobile-unknown"] = device("C02MOBL001", {"department": "engineering", "team": "mobile", "environment": "laptop"},
                                   mobile_devices, toolchains=TOOLCHAINS + [{"name": "ruby", "version": "3.3.6", "source": "mise"}])

# 6. Contractor in the web team: the group's `deny npm:*` beats the team's requires (more specific
#    level), its exact `allow npm:typescript` beats its own glob deny (exact over glob).
web = merge(base("web-01"), ENGINEERING, {
    "npm": {"typescript": "5.6.3", "eslint": "9.15.0", "prettier": "3.4.1"},
    "homebrew_formula": {"watchman": "2024.11.25.00", "awscli": "2.22.5"},
    "homebrew_cask": {"firefox": "133.0", "tailscale": "1.76.6", "docker": "4.36.0"}})
DEVICES["contractor-web"] = device("C02CTRW001", {"department": "engineering", "team": "web", "environment": "laptop",
                                                  "device_groups": ["contractors"]}, web)

# 7. Security lab machine: hashcat is allowed in the lab (environment beats department); the final
#    deny of john-jumbo decides before everything.
sec = merge(base("sec-01"), {
    "homebrew_formula": {"nmap": "7.95", "osquery": "5.14.1", "hashcat": "6.2.6", "john-jumbo": "1.9.0",
                         "metasploit": "6.4.38", "sqlmap": "1.8.11"},
    "homebrew_cask": {"wireshark": "4.4.2", "little-snitch": "6.1.2"}, "pipx": {"semgrep": "1.97.0"}})
DEVICES["security-lab"] = device("C02SECL001", {"department": "security", "team": "appsec", "environment": "lab"}, sec)

# 8. Web developer, observe mode: a deny with a range decides only inside it.
web2 = merge(base("web-02"), ENGINEERING, {
    "npm": {"typescript": "5.6.3", "eslint": "9.15.0", "prettier": "3.4.1",
            "node-ipc": "10.1.2",        # inside the protestware range: present_denied
            "colors": "1.4.0",           # outside the sabotaged range: the org's allow npm:* decides
            "event-stream": "3.3.5",     # outside the final deny's range: allowed
            "@acme/design-tokens": "2.3.0"},
    "homebrew_formula": {"watchman": "2024.11.25.00"}, "homebrew_cask": {"firefox": "133.0"}})
DEVICES["web-observe"] = device("C02WEBD002", {"department": "engineering", "team": "web", "environment": "laptop"}, web2)

# 9. Data scientist whose inventory is ten days old: unknown, although nothing is wrong in it.
data = merge(base("data-01"), ENGINEERING, {
    "pip": {"pandas": "2.2.3", "numpy": "1.26.4", "jupyterlab": "4.3.1", "pyarrow": "18.1.0", "scikit-learn": "1.5.2"},
    "pipx": {"ruff": "0.8.1"}, "homebrew_formula": {"duckdb": "1.1.3"}, "homebrew_cask": {"rstudio": "2024.09.1"}})
DEVICES["data-stale"] = device("C02DATA001", {"department": "engineering", "team": "data", "environment": "laptop"}, data,
                               facts={"uses_r": True}, collected_at="2026-11-19T08:00:00Z")

# 10. Intel CI runner in the canary ring: a compromised npm release (final deny with a range),
#     pnpm below the CI range.
ci = merge(without(base("ci-02"), "homebrew_cask", "google-chrome", "1password"), {
    "homebrew_formula": {"xcbeautify": "2.16.0", "ccache": "4.10.2"},
    "npm": {"pnpm": "9.1.4", "event-stream": "3.3.6"}, "cargo": {"sccache": "0.9.0"}, "mise": {"node": "22.11.0"}})
DEVICES["ci-runner-intel"] = device("MINI-CI-12", {"environment": "ci"}, ci, arch="x86_64", ring="canary", os_version="14.7.1")

# 11. Pilot fleet: conditional rules (macOS version, group names) and a warn-severity range.
pilot = merge(base("pilot-01"), {"homebrew_formula": {"mise": "2024.9.6"}, "homebrew_cask": {"arc": "1.69.0"}})
pilot["mise"]["python"] = "3.10.15"              # denied on pilot devices (< 3.11), and off the org pin
DEVICES["pilot-mixed"] = device("C02PILT001", {"environment": "laptop", "device_groups": ["pilot_fleet"]},
                                pilot, ring="pilot", os_version="15.2")

if __name__ == "__main__":
    for name, inv in DEVICES.items():
        with open(os.path.join(HERE, f"{name}.json"), "w") as f:
            json.dump(inv, f, indent=2, sort_keys=False)
            f.write("\n")
    print(f"wrote {len(DEVICES)} inventories")
