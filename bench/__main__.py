"""``python -m bench``: run the benchmarks and write bench/results.json."""

import sys

from bench.suites import main

sys.exit(main())
