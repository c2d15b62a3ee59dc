"""The course's grading pipeline, on top of nbgrader.

nbgrader does what it does well — generating the student release (solutions and hidden tests
stripped, cells locked and checksummed). This package adds what it lacks:

- :mod:`autograder.course`   — where labs, releases and mutants live;
- :mod:`autograder.release`  — regenerate ``labs/`` from ``solutions/`` (and check they are in sync);
- :mod:`autograder.notebook` — read any submission safely and rebuild the graded notebook from the
  instructor source, taking only the student's answer cells;
- :mod:`autograder.execute`  — run cells in a kernel with per-cell timeouts, restarting the kernel
  after a crash or hang so that one bad part costs only its own points;
- :mod:`autograder.grade`    — grade one submission or a folder (in parallel), write the CSV;
- :mod:`autograder.feedback` — per-student HTML feedback that never shows hidden tests;
- :mod:`autograder.validate` — solution full marks, blank release zero, every mutant caught.

Command line: ``python -m autograder {release,validate,grade} ...``.
"""
