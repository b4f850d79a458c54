"""Server-rendered pages for managers, examiners, investigators and admins. They call the same
services as the API, with the same accounts and roles; the session is the API's own bearer
token kept in an HttpOnly, SameSite=Strict cookie."""
