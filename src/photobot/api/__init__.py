"""The kiosk and app API under /v1: submit a photo (`POST /v1/jobs`) and follow it (`GET /v1/jobs/{id}`)."""
