"""nbgrader configuration: the course root is this folder, sources in ../solutions, releases in ../labs.

Used by ``python -m autograder release`` (which runs ``nbgrader generate_assignment`` here).
"""

c = get_config()  # noqa: F821  (provided by nbgrader when it loads this file)

c.CourseDirectory.root = "."
c.CourseDirectory.source_directory = "../solutions"
c.CourseDirectory.release_directory = "../labs"
c.CourseDirectory.submitted_directory = "submitted"
c.CourseDirectory.autograded_directory = "autograded"
c.CourseDirectory.feedback_directory = "feedback"
c.CourseDirectory.ignore = [".ipynb_checkpoints", "*.pyc", "__pycache__", ".DS_Store", ".hypothesis"]

# Students get clean notebooks: no outputs, solutions replaced by stubs, hidden tests removed.
c.ClearSolutions.code_stub = {"python": "# YOUR CODE HERE\nraise NotImplementedError()"}
c.ClearSolutions.text_stub = "YOUR ANSWER HERE"
c.ClearHiddenTests.enforce_metadata = True
c.ClearOutput.remove_metadata_fields = ["collapsed", "scrolled", "execution"]
