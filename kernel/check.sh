#!/bin/bash
# Check a kernel series: every patch listed in its series file must apply, in
# order, to the pristine Debian source tree of its base with no fuzz, and
# pass scripts/checkpatch.pl --strict (run from that tree) with no error,
# warning or check.  Prints one line per patch on stdout; exits non-zero on
# any problem.  Reuses (and if needed creates) the extracted source in the
# build.sh cache.
#
#   kernel/check.sh [--base 6.1|6.12]
#
# --base 6.1 (default): kernel/series on linux-source-6.1 6.1.192-3;
# --base 6.12: kernel/6.12/series on linux-source-6.12 (version: build.sh).
set -euo pipefail

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
CACHE=${FASTSUSPEND_CACHE:-$HOME/.cache/fastsuspend}

base=6.1
while [[ $# -gt 0 ]]; do
	case $1 in
	--base)
		[[ $# -ge 2 ]] || { echo "--base needs 6.1 or 6.12" >&2; exit 2; }
		base=$2
		shift
		;;
	--base=*) base=${1#--base=} ;;
	-h | --help) sed -n '2,12p' "$0" | sed 's/^# \{0,1\}//' >&2; exit 0 ;;
	*) echo "unknown argument: $1 (usage: kernel/check.sh [--base 6.1|6.12])" >&2; exit 2 ;;
	esac
	shift
done
case $base in
6.1) SERIES_DIR=$HERE ;;
6.12) SERIES_DIR=$HERE/6.12 ;;
*) echo "unknown --base '$base' (known: 6.1, 6.12)" >&2; exit 2 ;;
esac

pristine=$("$HERE/build.sh" --base "$base" --source-dir | tail -n 1)
[[ -f $pristine/scripts/checkpatch.pl ]] || { echo "no checkpatch.pl in $pristine" >&2; exit 1; }

patches=()
while IFS= read -r line || [[ -n $line ]]; do
	line=${line%%#*}
	line=${line//[[:space:]]/}
	[[ -n $line ]] && patches+=("$line")
done <"$SERIES_DIR/series"
[[ ${#patches[@]} -gt 0 ]] || { echo "$SERIES_DIR/series lists no patch" >&2; exit 1; }

mkdir -p "$CACHE/build"
scratch=$(mktemp -d "$CACHE/build/check.XXXXXX")
trap 'rm -rf "$scratch"' EXIT
# Hard-link farm of the pristine tree; files a patch touches get private
# copies first, so the pristine tree is never modified.
cp -al "$pristine" "$scratch/src"

# checkpatch wants to run from a kernel tree; fall back to --no-tree if it
# does not recognise this one as such.
cp_flags=(--strict --color=never)
(cd "$pristine" && perl -e 'exit(!(-e "MAINTAINERS" && -d "scripts" && -d "drivers"))') ||
	cp_flags+=(--no-tree)

failed=0
for p in "${patches[@]}"; do
	f=$SERIES_DIR/$p
	if [[ ! -f $f ]]; then
		printf 'FAIL %s: listed in series but missing\n' "$p"
		failed=1
		continue
	fi

	# 1. applies on top of the previous ones, with no fuzz
	apply=ok
	while IFS= read -r t; do
		[[ -e $scratch/src/$t ]] || continue
		cp -p "$scratch/src/$t" "$scratch/src/$t.fs-unlink"
		mv -f "$scratch/src/$t.fs-unlink" "$scratch/src/$t"
	done < <(sed -n 's|^+++ b/\([^[:space:]]*\).*|\1|p' "$f")
	if ! out=$(cd "$scratch/src" && patch -p1 --fuzz=0 --forward --batch \
			--no-backup-if-mismatch -i "$f" 2>&1); then
		apply="does not apply: $(printf '%s' "$out" | grep -iE 'fail|reject|hunk' | head -n 3 | tr '\n' ' ')"
	elif grep -qi 'offset' <<<"$out"; then
		apply="ok (with offset: $(grep -i offset <<<"$out" | head -n 1))"
	fi

	# 2. checkpatch --strict, from the pristine tree
	cp_out=$(cd "$pristine" && ./scripts/checkpatch.pl "${cp_flags[@]}" "$f" 2>&1) || true
	total=$(grep -E '^total: ' <<<"$cp_out" | tail -n 1)
	total=${total:-total: ? (checkpatch produced no summary)}

	if [[ $apply == ok* && $total == 'total: 0 errors, 0 warnings, 0 checks,'* ]]; then
		printf 'OK   %s: applies %s; checkpatch --strict %s\n' "$p" "$apply" "${total#total: }"
	else
		printf 'FAIL %s: applies %s; checkpatch --strict %s\n' "$p" "$apply" "${total#total: }"
		grep -E '^(ERROR|WARNING|CHECK)' <<<"$cp_out" | sed 's/^/     /' || true
		failed=1
	fi
done

if [[ $failed != 0 ]]; then
	echo "kernel series check FAILED" >&2
	exit 1
fi
ver=$(cat "$(dirname "$pristine")/.extracted" 2>/dev/null || echo '?')
echo "kernel series check passed (${#patches[@]} patches, base $(basename "$pristine") $ver)" >&2
