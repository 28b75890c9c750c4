# Sourced by test.sh and sanitize.sh: the suites whose timings are what they test (they drive browsers, ffmpeg,
# coturn or aiortc, and the lab's ExperimentTests), as a regular expression over test names for `swift test
# --filter` / `--skip`. They run on the plain build only: a sanitizer's slowdown (2x for ASan, 5-15x for TSan)
# breaks them without reaching code the other suites do not. Every other suite runs under AddressSanitizer.
timed_suites='Browser[A-Za-z0-9]*Tests|[A-Za-z0-9]*InteropTests|ExperimentTests'
