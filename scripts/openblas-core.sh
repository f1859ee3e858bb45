# Sourced by the launchers that start JVMs on this machine (scripts/sparkformer, the standalone workers).
# ND4J's OpenBLAS (0.3.19) does not know CPUs newer than itself and falls back to SSE-era kernels ("Barcelona" on AMD
# Zen 5: 1024^3 at 89 GFLOP/s on 2 cores, against 194 with Haswell's kernels and 349 with SkylakeX's AVX-512 ones;
# docs/PERFORMANCE.md). Unless OPENBLAS_CORETYPE is set, name the newest kernel family this CPU's flags allow.

# The OpenBLAS kernel family for a /proc/cpuinfo "flags" line, or nothing when the CPU predates AVX2.
openblas_coretype_for() {
  local flags=" $* "
  _openblas_has() { local f; for f; do [[ "$flags" == *" $f "* ]] || return 1; done; }
  if _openblas_has avx512f avx512bw avx512vl avx512dq; then echo SkylakeX
  elif _openblas_has avx2 fma; then echo Haswell
  fi
}

if [ -z "${OPENBLAS_CORETYPE:-}" ] && [ -r /proc/cpuinfo ]; then
  core=$(openblas_coretype_for "$(grep -m1 '^flags' /proc/cpuinfo | cut -d: -f2)")
  [ -n "$core" ] && export OPENBLAS_CORETYPE="$core"
  unset core
fi
