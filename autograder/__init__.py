"""The course's grading pipeline, on top of nbgrader.

nbgrader does what it does well — generating the student release (solutions and hidden tests
stripped, cells locked and checksummed). This package adds what it lacks:

- :mod:`autograder.course`   — where labs, releases and mutants live;
- :mod:`autograder.release`  — regenerate ``labs/`` from ``solutions/`` (and check they are in sync);
- :mod:`autograder.notebook` — read any submission safely and rebuild the graded notebook from the
  instructor source, taking only the student's answer cells;
- :mod:`autograder.sandbox`  — the isolated, resource-limited process that runs student code
  (bubblewrap namespaces and an unprivileged uid where available, rlimits always);
- :mod:`autograder.runner`   — what runs inside that process: executes answer cells, serves calls;
- :mod:`autograder.wire`     — plain data across the boundary (JSON + safetensors, never pickle);
- :mod:`autograder.grade`    — grade one submission: test cells run in the grader's process against
  proxies of the student's functions, so verdicts stay out of the student's reach;
- :mod:`autograder.scan`     — flag suspicious answer code for review;
- :mod:`autograder.orchestrate` — grade a folder (in parallel), archive, export the CSV;
- :mod:`autograder.feedback` — per-student HTML feedback that never shows hidden tests;
- :mod:`autograder.validate` — solution full marks, blank release zero, every mutant caught.

Command line: ``python -m autograder {release,validate,grade} ...``.
"""
