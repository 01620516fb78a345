"""Settings: the dataclasses a user fills (recipes, command line), and the launch checks they run.

The bottom of the house above errors: it knows no plug-in, data set or model.
"""
