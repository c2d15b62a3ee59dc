"""The course's grading pipeline, on top of nbgrader.

nbgrader does what it does well — generating the student release (solutions and hidden tests
stripped, cells locked and checksummed). This package adds what it lacks:

- :mod:`autograder.course`   — the manifest: one :class:`~autograder.course.Lab` per lab, where its files live;
- :mod:`autograder.model`    — the grading model (statuses, parts, results, options, tasks); no torch;
- :mod:`autograder.release`  — regenerate ``labs/`` from ``solutions/`` (and check they are in sync);
- :mod:`autograder.notebook` — read any submission safely and rebuild the graded notebook from the
  instructor source, taking only the student's answer cells;
- :mod:`autograder.sandbox`  — the isolated, resource-limited process that runs student code
  (bubblewrap namespaces and an unprivileged uid where available, rlimits always);
- :mod:`autograder.runner`   — what runs inside that process: executes answer cells, serves calls;
- :mod:`autograder.wire`     — plain data across the boundary (JSON + safetensors, never pickle), framed;
- :mod:`autograder.proxy`    — the grader's side of the sandbox: proxies for the student's functions and objects;
- :mod:`autograder.grade`    — grade one submission: test cells run in the grader's process against
  proxies of the student's functions, so verdicts stay out of the student's reach;
- :mod:`autograder.seeds`    — per-student hidden inputs: part seeds from an instructor secret (HMAC);
- :mod:`autograder.scan`     — flag suspicious answer code for review;
- :mod:`autograder.similarity` — pairs of unusually similar submissions (copydetect winnowing), an HTML report;
- :mod:`autograder.diagnosis` — explain a failed part by the known mistake (mutant) it behaves like, or by
  the earlier answer it calls;
- :mod:`autograder.orchestrate` — grade a folder (in parallel), archive, record;
- :mod:`autograder.distributed` — where grading runs: local worker processes or a Dask cluster;
- :mod:`autograder.gradebook` — submissions, autograde results and manual grades (SQLite or PostgreSQL);
- :mod:`autograder.export`   — ``grades.csv`` from the gradebook;
- :mod:`autograder.exchange` — the JupyterHub loop through nbgrader's exchange, and LMS exports;
- :mod:`autograder.feedback` — per-student HTML feedback that never shows hidden tests;
- :mod:`autograder.mutants`  — known-wrong answers (and alternative correct ones) with what they must score;
- :mod:`autograder.validate` — solution full marks, blank release zero, every mutant caught as declared,
  every alternative full marks;
- :mod:`autograder.mutation` — seeded AST mutants of the solutions' answer code: the mutation score per lab;
- :mod:`autograder.nbgrader_config` — the nbgrader configuration the release and the exchange share.

Command line: ``python -m autograder COMMAND ...`` with COMMAND one of release, validate, grade, regrade,
export, similarity, manual, protections, diagnosis, exchange (``python -m autograder --help``).
"""
