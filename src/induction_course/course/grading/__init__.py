"""Release and autograding of the chapters with nbgrader.

- :mod:`.layout`         the repository: its root, its chapters, :class:`GradingError`
- :mod:`.notebooks`      jupytext percent scripts <-> the ``.ipynb`` nbgrader reads
- :mod:`.course_dir`     temporary nbgrader course folders, their config, the gradebook merge
- :mod:`.release`        ``induction-course release``: ``chapters/`` from ``solutions/``
- :mod:`.intake`         reading and checking a class's submissions (folders, zips)
- :mod:`.preprocessors`  the steps that make a student's notebook gradable
- :mod:`.autograde`      ``induction-course grade``: one course folder and kernel per student
- :mod:`.sandbox`        bubblewrap around each student's run and its kernel; cgroups, uids
- :mod:`.scores`         the points recomputed by the grader from the autograded notebook
- :mod:`.outputs`        ``grades.csv``, ``feedback/`` and ``report.txt``
- :mod:`.deadlines`      ``--due``, late penalties and cut-off; submission times, never the clock
- :mod:`.lms`            Moodle and Canvas: names and ids of their downloads, their gradebook import files
- :mod:`.zipmeta`        a zip member's real name (UTF-8 without the flag) and time (UTC field or local)
- :mod:`.feedback`       the feedback pages: no hidden-test lines, no inlined JavaScript, no empty boxes
- :mod:`.written`        written questions (markdown answer cells), left by ``grade`` for manual grading
- :mod:`.written_csv`    ``written export|import``: the instructor's scores through a CSV file
- :mod:`.cli`            the ``release`` and ``grade`` subcommands
- ``kernel_launcher.py`` the kernel with memory and CPU limits, then the trusted check's producer;
                         both forks of one process that imported torch once (run by path)
- ``zygote.py``          those imports once per class, forked into each student's sandbox (root grader)

nbgrader, nbconvert and jupytext are imported by the functions that use them, so that
importing this package (the CLI's ``--help``) stays fast.
"""

from induction_course.course.grading.autograde import (
    DEFAULT_MEMORY_MB,
    DEFAULT_TIMEOUT,
    default_jobs,
    grade,
    notebook_time_limit,
)
from induction_course.course.grading.cli import add_subcommands
from induction_course.course.grading.intake import Submission
from induction_course.course.grading.layout import GradingError, find_root, list_chapters
from induction_course.course.grading.notebooks import dumps_notebook, notebook_from_script, paired_scripts
from induction_course.course.grading.outputs import GradeResult
from induction_course.course.grading.release import release

__all__ = [
    "DEFAULT_MEMORY_MB",
    "DEFAULT_TIMEOUT",
    "GradeResult",
    "GradingError",
    "Submission",
    "add_subcommands",
    "default_jobs",
    "dumps_notebook",
    "find_root",
    "grade",
    "list_chapters",
    "notebook_from_script",
    "notebook_time_limit",
    "paired_scripts",
    "release",
]
