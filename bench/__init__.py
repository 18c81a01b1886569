"""The benchmarks (``nox -s bench``, or ``python -m bench`` from the checkout): speed
figures written to ``bench/results.json``. Outside the installed package on purpose."""
