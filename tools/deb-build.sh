#!/usr/bin/env bash
# make deb: builds the Debian packages libnginx-mod-goim and goim-job
# with debhelper (debian/) from a copy of this checkout, runs lintian on
# them and leaves the two packages in build/ (build/deb/ keeps the
# .changes, .buildinfo, -dbgsym packages and the build log).
#
# The copy holds the files git knows plus new ones it does not ignore
# (what the working tree has, build/ excluded); debian/changelog is
# written there with the version from tools/deb-version.sh.  Nothing in
# the checkout itself is changed.

set -euo pipefail

cd "$(dirname "$0")/.."
root=$(pwd)

out=$root/build/deb
version=$(tools/deb-version.sh)
source=$(sed -n 's/^Source: *//p' debian/control)
maint=$(sed -n 's/^Maintainer: *//p' debian/control)
src=$out/$source-$version

echo "deb: $source $version"

rm -rf "$out"
mkdir -p "$src"
rm -f "$root"/build/*.deb

git ls-files -z --cached --others --exclude-standard \
    | grep -zv '^build/' \
    | while IFS= read -r -d '' f; do [ -e "$f" ] && printf '%s\0' "$f"; done \
    | tar --null -T - -cf - | tar -xf - -C "$src"

# one entry: this commit
{
    printf '%s (%s) unstable; urgency=medium\n\n' "$source" "$version"
    printf '  * Built from git commit %s.\n\n' "$(git rev-parse HEAD)"
    printf ' -- %s  %s\n' "$maint" "$(git log -1 --format=%cD HEAD)"
} >"$src/debian/changelog"

# -J2: at most two jobs (DEB_BUILD_OPTIONS parallel=2, debian/rules);
# unsigned, binary packages only
(cd "$src" && dpkg-buildpackage -b -us -uc -J2) >"$out/build.log" 2>&1 || {
    tail -n 60 "$out/build.log"
    echo "deb: dpkg-buildpackage failed, log in $out/build.log" >&2
    exit 1
}

changes=$(ls "$out"/"${source}"_"${version}"_*.changes)

# every tag lintian still reports is overridden with a reason in
# debian/*.lintian-overrides; info tags count too
echo "deb: lintian $(lintian --version | sed 's/.* //')"
lintian --info --display-info --fail-on error,warning,info "$changes"

for p in $(sed -n 's/^Package: *//p' debian/control); do
    cp "$out/${p}_${version}"_*.deb "$root/build/"
done
ls -l "$root"/build/*.deb
