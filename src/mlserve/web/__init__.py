"""The web UI: server-rendered pages whose scripts call the REST API.

Pages are Jinja templates (``templates/``) extending one layout; their scripts
(``static/js``, ES modules, no build step) fetch every figure, plot and live status
from ``/api/v1`` with the session cookie, as any client would. Plots are drawn by
Plotly.js, served from the ``plotly`` Python package (no CDN). Sign-in with an API
key starts a session (:mod:`mlserve.api.session`). See ``docs/ui.md``.

Owns: the pages, the sign-in form, the static files.

May import: ``api`` (session, access check, context accessor), the services,
``context``, ``store``, ``settings``, ``errors``. Never ``cli`` or ``server``.
"""
