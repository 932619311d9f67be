"""Documentation checks: numbers about the stack quoted in prose are traced to the artifacts that
make targets write (`make runbook-numbers`)."""
