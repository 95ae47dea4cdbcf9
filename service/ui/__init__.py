"""The page for the people who act on alerts, at ``/ui``: rendered on the server, no script, no CDN.

    sessions.py   the signed session cookie and the CSRF token of its forms
    pages.py      the Jinja2 environment and the headers every page carries
    error_pages.py  errors under /ui as pages (the API's stay JSON)
    drafts.py     a refused form, kept for the alert's page to show once
    routes.py     sign-in/out, the alerts list, an alert's page and its acknowledge / resolve forms
    templates/    the HTML, autoescaped
    static/       the one stylesheet
"""
