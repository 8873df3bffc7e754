"""Security checks as tests (issue 9): forged tokens, object access by strangers, CSRF on
every form, hostile uploads. Each test derives what it covers from the application itself
(the OpenAPI schema, the templates, the route table) so a new route or form is covered
automatically, or the test fails naming it."""
