"""Release and autograding of the chapters with nbgrader."""

from induction_course.course.grading.autograde import *  # noqa: F401,F403
from induction_course.course.grading.autograde import (  # noqa: F401
    add_subcommands,
    default_jobs,
    find_root,
    grade,
    notebook_from_script,
    release,
)
