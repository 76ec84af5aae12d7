"""Custom ExampleGen for `<root>/<split>/<class>/<image>` folders."""
