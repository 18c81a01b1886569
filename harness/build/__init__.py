"""The kernel-build stage: source -> patch -> configure -> compile -> artifact.

One module per step, in the order data flows through them:

- :mod:`.source`   the base tree (Debian's ``linux-source`` tarball, extracted once and
  kept pristine in a git repository, or the user's own clean git tree) and the per-series
  work tree (a ``git worktree`` of the base commit);
- :mod:`.patch`    the series (``series.toml``, quilt ``series``, a directory of
  ``git format-patch`` files or an mbox) applied idempotently with ``git am``;
- :mod:`.kconfig`  fragments merged, ``allnoconfig`` + ``olddefconfig``, and every option
  asked for checked in the final ``.config`` (a dropped one is named with its unmet
  dependency);
- :mod:`.make`     ``make bzImage`` out of tree with ccache, progress on stderr, the full
  log on disk, the first compiler errors in :class:`~harness.errors.BuildError`;
- :mod:`.artifact` inputs hashed into a cache key; artifacts published atomically;
- :mod:`.pipeline` the steps above, in order; :mod:`.command` the ``harness build`` CLI.
"""
