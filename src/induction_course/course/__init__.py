"""Everything that knows chapters, notebooks and nbgrader.

- :mod:`.notebook`: what a chapter's cells call (runtime setup, Colab/Binder links, views, export);
- :mod:`.checks`: the visible checks and hidden-test comparisons, one core and one module per chapter;
- :mod:`.grading`: release and autograding, as a pipeline of small nbgrader-style steps;
- :mod:`.cli`: the installed ``induction-course`` command.

The course imports the library (:mod:`induction_course`), never the reverse.
"""
