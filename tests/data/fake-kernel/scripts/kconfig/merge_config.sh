#!/bin/sh
# Fake merge_config.sh: -m -O DIR BASE FRAGMENTS... appends the fragments to BASE.
set -e
[ "$1" = "-m" ] && shift
[ "$1" = "-O" ] && { out=$2; shift 2; }
base=$1; shift
for frag in "$@"; do cat "$frag" >> "$base"; done
