#!/usr/bin/env bash
# scripts/test-release.sh: check the release files without building anything.
#
#   - META.json, as `make META.json` makes it from META.json.in, is JSON and
#     follows the PGXN Meta Spec 1.0.0 (the required keys, their types,
#     semantic versions, licence names, prereqs);
#   - one version: trek.control's default_version X.Y is the only copy that
#     files built from it read (the Makefile's EXTVERSION, the library's
#     magic block, META.json's versions through @DISTVERSION@, the name of
#     the archive); X.Y.0 (PGXN and Debian want three numbers) must be the
#     upstream part of debian/changelog's version and the newest heading of
#     CHANGELOG.md (after those of later versions marked "(unreleased)"),
#     which people write;
#     trek--X.Y.sql or an update script to X.Y exists;
#   - `make dist` writes trek-X.Y.0.zip, every file under trek-X.Y.0/, with
#     what a build and its tests need and no build products.
#
# One line per check ("ok - ..." or "not ok - ..."), then "N passed, M failed".
# Needs python3, make and (for the archive) git; takes about a second.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

if ! command -v python3 >/dev/null; then
	echo "not ok - python3 is needed to read META.json"
	echo "0 passed, 1 failed"
	exit 1
fi

tmp=$(mktemp -d "${TMPDIR:-/tmp}/trek-release.XXXXXX")
trap 'rm -rf "$tmp"' EXIT
make -s --no-print-directory META.json >"$tmp/meta.log" 2>&1 || cat "$tmp/meta.log"

# The archive, made by the Makefile's own target (git checkouts only).
dist_status=skip
if git rev-parse --is-inside-work-tree >/dev/null 2>&1 &&
	git rev-parse --verify -q HEAD >/dev/null; then
	if make -s --no-print-directory dist DISTDIR="$tmp" >"$tmp/dist.log" 2>&1; then
		dist_status=made
	else
		dist_status=failed
	fi
	git ls-tree -r --name-only HEAD >"$tmp/head-files"
fi

DIST_STATUS=$dist_status TMPDIR_RELEASE=$tmp python3 - <<'EOF'
import json
import os
import re
import stat
import zipfile

tmp = os.environ["TMPDIR_RELEASE"]
dist_status = os.environ["DIST_STATUS"]
results = []


def check(name, problems):
    """Record one check: problems is a list of strings (empty = passed)."""
    results.append((name, problems))


def read(path):
    with open(path, encoding="utf-8") as f:
        return f.read()


# Semantic Versioning 2.0.0, as PGXN requires it.
SEMVER = (r"(0|[1-9]\d*)\.(0|[1-9]\d*)\.(0|[1-9]\d*)"
          r"(-[0-9A-Za-z-]+(\.[0-9A-Za-z-]+)*)?(\+[0-9A-Za-z-]+(\.[0-9A-Za-z-]+)*)?")
RANGE_ONE = r"((==|!=|<=|>=|<|>)\s*)?(%s|0)" % SEMVER
TERM = re.compile(r"[^/\\\s\x00-\x1f\x7f]{2,}")
LICENSES = {
    "agpl_3", "apache_1_1", "apache_2_0", "artistic_1", "artistic_2", "bsd",
    "freebsd", "gfdl_1_2", "gfdl_1_3", "gpl_1", "gpl_2", "gpl_3", "lgpl_2_1",
    "lgpl_3_0", "mit", "mozilla_1_0", "mozilla_1_1", "openssl", "perl_5",
    "postgresql", "qpl_1_0", "ssleay", "sun", "zlib", "open_source",
    "restricted", "unrestricted", "unknown",
}
TOP_KEYS = {
    "name", "version", "abstract", "maintainer", "license", "provides",
    "meta-spec", "description", "generated_by", "tags", "no_index", "prereqs",
    "release_status", "resources",
}
PHASES = {"configure", "build", "test", "runtime", "develop"}
RELATIONS = {"requires", "recommends", "suggests", "conflicts"}


def is_semver(v):
    return isinstance(v, str) and re.fullmatch(SEMVER, v) is not None


def custom(key):
    return re.fullmatch(r"[xX]_.+", key) is not None


def nonempty_str(v):
    return isinstance(v, str) and v != ""


def validate_meta(meta):
    """The rules of PGXN Meta Spec 1.0.0 for a distribution's META.json."""
    p = []
    if not isinstance(meta, dict):
        return ["the top level is not an object"]
    for key in ("name", "version", "abstract", "maintainer", "license",
                "provides", "meta-spec"):
        if key not in meta:
            p.append("required key %r is missing" % key)
    for key in meta:
        if key not in TOP_KEYS and not custom(key):
            p.append("unknown key %r (custom keys start with x_)" % key)
    if "name" in meta and not (isinstance(meta["name"], str) and TERM.fullmatch(meta["name"])):
        p.append("name is not a term (2+ characters, no slash, space or control character)")
    if "version" in meta and not is_semver(meta["version"]):
        p.append("version %r is not a semantic version" % (meta["version"],))
    for key in ("abstract", "description", "generated_by"):
        if key in meta and not nonempty_str(meta[key]):
            p.append("%s is not a non-empty string" % key)
    m = meta.get("maintainer")
    if m is not None and not (nonempty_str(m) or (
            isinstance(m, list) and m and all(nonempty_str(x) for x in m)
            and len(set(m)) == len(m))):
        p.append("maintainer is neither a string nor a list of distinct strings")
    lic = meta.get("license")
    if lic is not None:
        if isinstance(lic, str):
            ok = lic in LICENSES
        elif isinstance(lic, list):
            ok = bool(lic) and all(x in LICENSES for x in lic) and len(set(lic)) == len(lic)
        elif isinstance(lic, dict):
            ok = bool(lic) and all(nonempty_str(v) and re.match(r"[a-z][a-z0-9+.-]*:", v)
                                   for v in lic.values())
        else:
            ok = False
        if not ok:
            p.append("license %r is not a PGXN licence name, list or name-to-URI object" % (lic,))
    prov = meta.get("provides")
    if prov is not None:
        if not isinstance(prov, dict) or not prov:
            p.append("provides is not a non-empty object")
        else:
            for ext, spec in prov.items():
                if not TERM.fullmatch(ext):
                    p.append("provides: %r is not a term" % ext)
                if not isinstance(spec, dict):
                    p.append("provides.%s is not an object" % ext)
                    continue
                for key in ("file", "version"):
                    if key not in spec:
                        p.append("provides.%s.%s is missing" % (ext, key))
                for key in spec:
                    if key not in ("file", "version", "abstract", "docfile", "docpath") and not custom(key):
                        p.append("provides.%s: unknown key %r" % (ext, key))
                if "version" in spec and not is_semver(spec["version"]):
                    p.append("provides.%s.version %r is not a semantic version" % (ext, spec["version"]))
                for key in ("file", "docfile"):
                    if key in spec and not (nonempty_str(spec[key]) and os.path.isfile(spec[key])):
                        p.append("provides.%s.%s %r is not a file of the distribution" % (ext, key, spec[key]))
    ms = meta.get("meta-spec")
    if ms is not None:
        if not isinstance(ms, dict) or not re.fullmatch(r"1\.0\.[0-9]+", str(ms.get("version", ""))):
            p.append("meta-spec.version is not 1.0.x")
        elif "url" in ms and ms["url"] not in ("https://pgxn.org/meta/spec.txt",
                                                 "http://pgxn.org/meta/spec.txt"):
            p.append("meta-spec.url is not the spec's address")
        elif any(k not in ("version", "url") and not custom(k) for k in ms):
            p.append("meta-spec has unknown keys")
    pre = meta.get("prereqs")
    if pre is not None:
        if not isinstance(pre, dict) or not any(k in PHASES for k in pre):
            p.append("prereqs names no phase")
        else:
            for phase, rels in pre.items():
                if custom(phase):
                    continue
                if phase not in PHASES:
                    p.append("prereqs: unknown phase %r" % phase)
                    continue
                if not isinstance(rels, dict) or not any(r in RELATIONS for r in rels):
                    p.append("prereqs.%s names no relationship" % phase)
                    continue
                for rel, reqs in rels.items():
                    if custom(rel):
                        continue
                    if rel not in RELATIONS:
                        p.append("prereqs.%s: unknown relationship %r" % (phase, rel))
                        continue
                    if not isinstance(reqs, dict) or not reqs:
                        p.append("prereqs.%s.%s is not a non-empty object" % (phase, rel))
                        continue
                    for name, rng in reqs.items():
                        if not TERM.fullmatch(name):
                            p.append("prereqs.%s.%s: %r is not a term" % (phase, rel, name))
                        if not (isinstance(rng, str) and re.fullmatch(
                                r"%s(,\s*%s)*" % (RANGE_ONE, RANGE_ONE), rng)):
                            p.append("prereqs.%s.%s.%s: %r is not a version range" % (phase, rel, name, rng))
    tags = meta.get("tags")
    if tags is not None and not (isinstance(tags, list) and tags and len(set(tags)) == len(tags)
                                 and all(isinstance(t, str) and 2 <= len(t) <= 255
                                         and re.fullmatch(r"[^/\\\x00-\x1f\x7f]+", t) for t in tags)):
        p.append("tags is not a list of distinct tags")
    if "release_status" in meta and meta["release_status"] not in ("stable", "testing", "unstable"):
        p.append("release_status is not stable, testing or unstable")
    ni = meta.get("no_index")
    if ni is not None:
        if not isinstance(ni, dict) or not any(k in ("file", "directory") for k in ni):
            p.append("no_index names neither file nor directory")
    res = meta.get("resources")
    if res is not None:
        if not isinstance(res, dict) or not any(k in ("homepage", "bugtracker", "repository") for k in res):
            p.append("resources names no homepage, bugtracker or repository")
    return p


# 1. META.json
meta = None
try:
    meta = json.loads(read("META.json"))
    check("META.json is JSON", [])
except (OSError, ValueError) as e:
    check("META.json is JSON", [str(e)])
if meta is not None:
    check("META.json follows PGXN Meta Spec 1.0.0", validate_meta(meta))

# 2. One version everywhere
problems = []
control = read("trek.control")
m = re.search(r"^\s*default_version\s*=\s*'([^']*)'", control, re.M)
default_version = m.group(1) if m else None
if default_version is None:
    problems.append("trek.control has no default_version")
elif not re.fullmatch(r"[0-9]+\.[0-9]+", default_version):
    problems.append("default_version %r is not MAJOR.MINOR" % default_version)
release = (default_version or "?") + ".0"
# the Makefile takes its version from trek.control, not a copy of its own,
# and META.json.in leaves both of its versions to it
if not re.search(r"^EXTVERSION\s*:?=\s*\$\(shell .*\$\(EXTENSION\)\.control\)", read("Makefile"), re.M):
    problems.append("Makefile's EXTVERSION is not read from trek.control")
if len(re.findall(r'"version":\s*"@DISTVERSION@"', read("META.json.in"))) != 2:
    problems.append("META.json.in does not leave both versions to @DISTVERSION@")
if isinstance(meta, dict):
    if meta.get("version") != release:
        problems.append("META.json version %r is not %s" % (meta.get("version"), release))
    pv = ((meta.get("provides") or {}).get("trek") or {}).get("version")
    if pv != release:
        problems.append("META.json provides.trek.version %r is not %s" % (pv, release))
first = read("debian/changelog").split("\n", 1)[0]
m = re.match(r"trek \(([^)]+)\) ", first)
if not m:
    problems.append("debian/changelog does not start with an entry for trek")
else:
    upstream = re.sub(r"^[0-9]+:", "", m.group(1)).rsplit("-", 1)[0]
    if upstream != release:
        problems.append("debian/changelog's upstream version %s is not %s" % (upstream, release))
# headings of later versions still marked "(unreleased)" collect what the
# next release will bring; the newest heading after them is this release's
def version_key(v):
    return tuple(int(x) for x in v.split(".")) if re.fullmatch(r"[0-9]+(\.[0-9]+)*", v) else None
heading = None
for m in re.finditer(r"^## +(\S+)(.*)$", read("CHANGELOG.md"), re.M):
    key, ours = version_key(m.group(1)), version_key(release)
    if ("(unreleased)" in m.group(2) and key is not None and ours is not None
            and key > ours):
        continue
    heading = m.group(1)
    break
if heading != release:
    problems.append("CHANGELOG.md's newest heading is %s, not %s"
                    % (heading or "(missing)", release))
if default_version and not (os.path.isfile("trek--%s.sql" % default_version) or
                            any(re.fullmatch(r"trek--[0-9.]+--%s\.sql" % re.escape(default_version), f)
                                for f in os.listdir("."))):
    problems.append("no install or update script leads to version %s" % default_version)
check("one version: trek.control %s, Makefile, META.json, debian/changelog and CHANGELOG.md %s"
      % (default_version, release), problems)

# 3. The archive of make dist
name = "trek-%s.zip" % release
if dist_status == "skip":
    results.append(("make dist (not a git checkout)", None))
elif dist_status == "failed":
    check("make dist writes %s" % name, [read(os.path.join(tmp, "dist.log")).strip()])
else:
    problems = []
    path = os.path.join(tmp, name)
    if not os.path.isfile(path):
        problems.append("%s was not written (found: %s)" % (name, ", ".join(sorted(os.listdir(tmp)))))
    else:
        head = set(read(os.path.join(tmp, "head-files")).split("\n")) - {""}
        prefix = "trek-%s/" % release
        with zipfile.ZipFile(path) as z:
            infos = z.infolist()
        names = {i.filename for i in infos}
        outside = [n for n in names if not n.startswith(prefix)]
        if outside:
            problems.append("entries outside %s: %s" % (prefix, ", ".join(sorted(outside)[:5])))
        files = {n[len(prefix):] for n in names if n.startswith(prefix) and not n.endswith("/")}
        mk = re.sub(r"\\\n", " ", read("Makefile"))

        def var(v):
            m = re.search(r"^%s\s*[:?]?=(.*)$" % v, mk, re.M)
            return m.group(1).split() if m else []
        need = {"Makefile", "trek.control", "META.json", "LICENSE", "README.md",
                "CHANGELOG.md", "src/python_shim.py"}
        need |= {o[:-2] + ".c" for o in var("OBJS")}
        need |= {f for f in head if re.fullmatch(r"trek--[0-9.-]+\.sql|src/[^/]+\.h", f)}
        for t in var("REGRESS"):
            need |= {"sql/%s.sql" % t, "expected/%s.out" % t}
        need |= {f for f in head if f.startswith(("test/fixtures/", "test/regress/", "expected/", "debian/"))}
        need |= {"debian/" + f for f in ("changelog", "control", "control.in", "copyright",
                                        "pgversions", "rules", "source/format",
                                        "tests/control", "tests/control.in",
                                        "tests/installcheck")}
        missing = sorted(need - files)
        if missing:
            not_committed = [f for f in missing if f not in head]
            problems.append("missing: %s%s" % (", ".join(missing[:10]),
                                                " (not committed: %s)" % ", ".join(not_committed[:10])
                                                if not_committed else ""))
        built = sorted(f for f in files if re.search(r"\.(o|so|bc|zip)$|^src/python_shim\.h$|^results/", f))
        if built:
            problems.append("build products in the archive: %s" % ", ".join(built[:10]))
        for exe in ("debian/rules", "debian/tests/installcheck"):
            info = next((i for i in infos if i.filename == prefix + exe), None)
            if info is not None and not (info.external_attr >> 16) & stat.S_IXUSR:
                problems.append("%s lost its executable bit" % exe)
    check("make dist writes %s with what a build needs, under trek-%s/" % (name, release), problems)

passed = failed = skipped = 0
for name, problems in results:
    if problems is None:
        print("ok - %s # skip" % name)
        skipped += 1
    elif problems:
        print("not ok - %s" % name)
        for p in problems:
            print("    %s" % p)
        failed += 1
    else:
        print("ok - %s" % name)
        passed += 1
print("%d passed, %d failed%s" % (passed, failed, ", %d skipped" % skipped if skipped else ""))
raise SystemExit(1 if failed else 0)
EOF
