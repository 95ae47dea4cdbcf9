"""The page for the people who act on alerts, at ``/ui``: rendered on the server, no script, no CDN.

    sessions.py   the signed session cookie and the CSRF token of its forms
    pages.py      the Jinja2 environment and the headers every page carries
    error_pages.py  errors under /ui as pages (the API's stay JSON)
    drafts.py     a refused form, kept for the alert's page to show once
    signed_in.py  who is signed in: the session dependencies, the CSRF check, the sign-in page
    sign_in.py    signing in and out
    routes.py     the reviewers' queue, an alert's page, the user's picture; wires every router
    forms.py      the alert page's acknowledge / resolve forms, and a form that is not taken
    words.py      what the pages say about verdicts, causes and endings
    timeline_view.py  whether the picture holds the alert's post, and its text alternative
    templates/    the HTML, autoescaped
    static/       the one stylesheet
"""
