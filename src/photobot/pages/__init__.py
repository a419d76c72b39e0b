"""Guest-facing HTML: the guest page (/p/…), the event gallery and live wall (/e/…), the reference kiosk (/kiosk).

`photobot.pages.routes.routes` is mounted by `photobot.app.build_routes`; retention (`pages.retention`) runs in
the worker. See `routes.py` for the list of paths.
"""
