# nbgrader configuration of the induction-heads course.
#
# The course directory is the repository: nbgrader's "source" notebooks are the reference
# solutions in solutions/, its "release" is chapters/ (what students open). One chapter is one
# nbgrader assignment: solutions/01_build_transformer/01_build_transformer.ipynb.
#
# You rarely run nbgrader by hand: `induction-course release` regenerates chapters/ and
# `induction-course grade CHAPTER SUBMISSIONS --out DIR` autogrades a class; both load this
# file and only redirect the directories (and the gradebook) to a temporary course folder.
# By hand, from graders/: `nbgrader generate_assignment 01_build_transformer --force`.
import os

c = get_config()  # noqa: F821 (provided by traitlets when it loads this file)

_graders = os.path.dirname(os.path.abspath(__file__))

c.CourseDirectory.course_id = "induction-heads"
c.CourseDirectory.root = os.path.dirname(_graders)
c.CourseDirectory.source_directory = "solutions"
c.CourseDirectory.release_directory = "chapters"
c.CourseDirectory.db_url = "sqlite:///" + os.path.join(_graders, "gradebook.db")
# The jupytext twin of each reference notebook (NN_name.py) holds the solutions: never release it.
c.CourseDirectory.ignore = [".ipynb_checkpoints", "*.pyc", "__pycache__", "feedback", ".*", "[0-9][0-9]_*.py"]

# Every notebook runs in the python3 kernel of the environment that runs nbgrader.
c.Execute.kernel_name = "python3"
c.ExecutePreprocessor.kernel_name = "python3"
# Seconds per cell. The slowest cell of chapter 1 takes a few seconds on a 2-core CPU; a
# submission stuck in a loop is cut off here and loses the points of that cell only.
# `induction-course grade` overrides the timeout (--timeout), runs the kernel through
# src/induction_course/course/grading/kernel_launcher.py (memory and CPU limits, --memory-mb) and kills a whole
# notebook after 4*timeout+120 s; see graders/AUTHORING.md, "Grading a class".
c.Execute.timeout = 120
c.ExecutePreprocessor.timeout = 120
c.Execute.interrupt_on_timeout = True

# What students see in place of the solutions.
c.ClearSolutions.code_stub = {"python": "# YOUR CODE HERE\nraise NotImplementedError()"}
c.ClearSolutions.text_stub = "YOUR ANSWER HERE"

# Feedback shows each student their autograded notebook with the failure messages of the hidden
# tests, but not the hidden tests' source (nbgrader's default would show it).
from nbconvert.preprocessors import CSSHTMLHeaderPreprocessor  # noqa: E402
from nbgrader.preprocessors import ClearHiddenTests, GetGrades  # noqa: E402

c.GenerateFeedback.preprocessors = [GetGrades, ClearHiddenTests, CSSHTMLHeaderPreprocessor]
