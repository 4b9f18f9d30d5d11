#!/usr/bin/env bash
# Check that the fastsuspend hypervisor series applies, in order and with no
# fuzz, to its pristine base tree: for --base 4.17 (the default) Debian's
# xen=4.17.5+72-g01140da4e8-1 (with Debian's own debian/patches applied, as
# dpkg-source -x leaves it), series in this directory; for --base 4.20 Xen
# RELEASE-4.20.4 (build.sh says why not Debian trixie's source package),
# series in 4.20/.
#
# Usage: hypervisor-patches/check.sh [--base 4.17|4.20]
#
# Prints one line per patch ("OK <patch>: <subject>" or "FAIL <patch>") and
# exits non-zero if any patch fails, if the series is empty or lists a
# missing file, if a patch lacks the Signed-off-by line, or if a line it
# adds to a .c/.h file has a tab, trailing whitespace or more than 80
# columns (Xen's CODING_STYLE).  Uses the
# pristine tree cached by build.sh --source-only (downloads/extracts it on
# first use).
set -euo pipefail

HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
log() { echo "[hypervisor/check.sh +${SECONDS}s] $*" >&2; }

BASE=4.17
while [ $# -gt 0 ]; do
    case "$1" in
        --base)
            [ $# -ge 2 ] || { log "--base needs 4.17 or 4.20"; exit 2; }
            BASE=$2
            shift
            ;;
        --base=*) BASE=${1#--base=} ;;
        *) log "unknown argument: $1 (usage: check.sh [--base 4.17|4.20])"; exit 2 ;;
    esac
    shift
done
case "$BASE" in
    4.17) SERIES_DIR=$HERE ;;
    4.20) SERIES_DIR=$HERE/4.20 ;;
    *) log "unknown --base '$BASE' (known: 4.17, 4.20)"; exit 2 ;;
esac
log "base $BASE, series $SERIES_DIR/series"

PRISTINE="$("$HERE/build.sh" --base "$BASE" --source-only | tail -n1)"
[ -d "$PRISTINE/xen" ] || { log "no pristine tree at $PRISTINE"; exit 1; }

TMP="$(mktemp -d "${TMPDIR:-/tmp}/fastsuspend-check.XXXXXX")"
trap 'rm -rf "$TMP"' EXIT
# The series only touches xen/; copy just that (much faster than the tree).
mkdir -p "$TMP/src"
cp -a "$PRISTINE/xen" "$TMP/src/xen"

mapfile -t PATCHES < <(sed -e 's/#.*//' -e 's/[[:space:]]*$//' -e '/^$/d' \
                       "$SERIES_DIR/series")
[ ${#PATCHES[@]} -gt 0 ] || { echo "FAIL series is empty"; exit 1; }

rc=0
for p in "${PATCHES[@]}"; do
    if [ ! -f "$SERIES_DIR/$p" ]; then
        echo "FAIL $p: missing"
        rc=1
        break
    fi
    # Unfold the (RFC 2822, possibly folded) Subject: header.
    subject="$(awk '/^Subject: /{s=substr($0,10); f=1; next}
                    f && /^[ \t]/{sub(/^[ \t]+/," "); s=s $0; next}
                    f{exit} END{print s}' "$SERIES_DIR/$p" |
               sed 's/^\[PATCH[^]]*\] //')"
    if ! grep -q '^Signed-off-by: ' "$SERIES_DIR/$p"; then
        echo "FAIL $p: no Signed-off-by"
        rc=1
        continue
    fi
    # Xen CODING_STYLE, the mechanical part, on the lines a patch adds to C
    # sources and headers: spaces only (no tabs), no trailing whitespace,
    # at most 80 columns.
    if style="$(awk '/^\+\+\+ /{f=substr($2, 3); next}
                     /^\+/ && f ~ /\.[ch]$/ {
                         l=substr($0, 2)
                         if (l ~ /\t/) print f ": tab: " l
                         else if (l ~ /[ ]$/) print f ": trailing space: " l
                         else if (length(l) > 80) print f ": over 80 columns: " l
                     }' "$SERIES_DIR/$p")" && [ -n "$style" ]; then
        echo "FAIL $p: CODING_STYLE"
        sed 's/^/    /' <<<"$style" >&2
        rc=1
        continue
    fi
    if out="$(patch -d "$TMP/src" -p1 --fuzz=0 --batch --forward \
                    --no-backup-if-mismatch < "$SERIES_DIR/$p" 2>&1)"; then
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
