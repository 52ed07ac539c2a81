#!/bin/sh
# Prints the Debian package version of this checkout, from git:
#
#   tag v1.2.3 on HEAD           1.2.3
#   N commits after tag v1.2.3   1.2.3+git<commit time>.<hash>
#   no v* tag (a fresh clone)    <GOIM_JOB_VERSION>~git<commit time>.<hash>
#
# <commit time> is HEAD's committer time in UTC (YYYYMMDDhhmmss), so
# later commits sort higher even in a shallow clone; "~" sorts a
# snapshot before the release it leads to.  ".dirty" is appended when
# tracked files differ from HEAD (make deb packs the working tree).

set -eu

cd "$(dirname "$0")/.."

git rev-parse --verify -q HEAD >/dev/null || {
    echo "deb-version: $(pwd) is not a git checkout with a commit" >&2
    exit 1
}

hash=$(git rev-parse --short=10 HEAD)
stamp=$(TZ=UTC git log -1 --format=%cd --date=format-local:%Y%m%d%H%M%S HEAD)

dirty=""
git diff --quiet HEAD -- 2>/dev/null || dirty=".dirty"

if tag=$(git describe --tags --abbrev=0 --match 'v[0-9]*' HEAD 2>/dev/null)
then
    base=${tag#v}
    if [ "$(git rev-list --count "$tag..HEAD")" = 0 ] && [ -z "$dirty" ]; then
        echo "$base"
    else
        echo "$base+git$stamp.$hash$dirty"
    fi
    exit 0
fi

# the version the job reports (goim-job --version)
base=$(git grep -h -o -E 'define[[:space:]]+GOIM_JOB_VERSION[[:space:]]+"[0-9][^"]*"' \
           HEAD -- job 2>/dev/null | sed 's/.*"\(.*\)"/\1/' | head -1)
echo "${base:-0}~git$stamp.$hash$dirty"
