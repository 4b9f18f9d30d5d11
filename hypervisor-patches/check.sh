#!/usr/bin/env bash
# Check that the fastsuspend hypervisor series applies, in order and with no
# fuzz, to a pristine Debian xen=4.17.5+72-g01140da4e8-1 tree (with Debian's
# own debian/patches applied, as dpkg-source -x leaves it).
#
# Usage: hypervisor-patches/check.sh
#
# Prints one line per patch ("OK <patch>: <subject>" or "FAIL <patch>") and
# exits non-zero if any patch fails, if the series is empty or lists a
# missing file, or if a patch lacks the Signed-off-by line.  Uses the
# pristine tree cached by build.sh --source-only (downloads/extracts it on
# first use).
set -euo pipefail

HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
log() { echo "[hypervisor/check.sh +${SECONDS}s] $*" >&2; }

PRISTINE="$("$HERE/build.sh" --source-only | tail -n1)"
[ -d "$PRISTINE/xen" ] || { log "no pristine tree at $PRISTINE"; exit 1; }

TMP="$(mktemp -d "${TMPDIR:-/tmp}/fastsuspend-check.XXXXXX")"
trap 'rm -rf "$TMP"' EXIT
# The series only touches xen/; copy just that (much faster than the tree).
mkdir -p "$TMP/src"
cp -a "$PRISTINE/xen" "$TMP/src/xen"

mapfile -t PATCHES < <(sed -e 's/#.*//' -e 's/[[:space:]]*$//' -e '/^$/d' \
                       "$HERE/series")
[ ${#PATCHES[@]} -gt 0 ] || { echo "FAIL series is empty"; exit 1; }

rc=0
for p in "${PATCHES[@]}"; do
    if [ ! -f "$HERE/$p" ]; then
        echo "FAIL $p: missing"
        rc=1
        break
    fi
    # Unfold the (RFC 2822, possibly folded) Subject: header.
    subject="$(awk '/^Subject: /{s=substr($0,10); f=1; next}
                    f && /^[ \t]/{sub(/^[ \t]+/," "); s=s $0; next}
                    f{exit} END{print s}' "$HERE/$p" |
               sed 's/^\[PATCH[^]]*\] //')"
    if ! grep -q '^Signed-off-by: ' "$HERE/$p"; then
        echo "FAIL $p: no Signed-off-by"
        rc=1
        continue
    fi
    if out="$(patch -d "$TMP/src" -p1 --fuzz=0 --batch --forward \
                    --no-backup-if-mismatch < "$HERE/$p" 2>&1)"; then
        if grep -q 'offset' <<<"$out"; then
            echo "OK   $p: $subject (applied with offsets)"
        else
            echo "OK   $p: $subject"
        fi
    else
        echo "FAIL $p: does not apply with --fuzz=0"
        sed 's/^/    /' <<<"$out" >&2
        rc=1
        break
    fi
done

exit $rc
