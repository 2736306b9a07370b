"""URL routes. Under ``/v1/`` Django routes on the raw, still percent-encoded path
(the HTTP edge puts it in ``scope["path"]``), so a stream named ``a/b`` arrives as
``a%2Fb`` in one segment; the views decode their path parameters themselves.
"""

from django.contrib import admin
from django.urls import path, re_path

from basins.views import BasinsView, BasinView
from s2site.api import errors
from s2site.api import views as api
from streams.views import StreamsView, StreamView

urlpatterns = [
    path("health", api.health),
    path("ping", api.health),
    path("admin/", admin.site.urls),
    path("v1/basins", BasinsView.as_view()),
    path("v1/basins/<str:basin>", BasinView.as_view()),
    path("v1/streams", StreamsView.as_view()),
    path("v1/streams/<str:stream>", StreamView.as_view()),
    path("v1/access-tokens", api.AccessTokensView.as_view()),
    path("v1/access-tokens/<str:token_id>", api.AccessTokenView.as_view()),
    path("v1/locations", api.LocationsView.as_view()),
    path("v1/locations/default", api.DefaultLocationView.as_view()),
    path("v1/metrics", api.AccountMetricsView.as_view()),
    path("v1/metrics/<str:basin>", api.BasinMetricsView.as_view()),
    path("v1/metrics/<str:basin>/<str:stream>", api.StreamMetricsView.as_view()),
    # Anything else: an empty 404, whatever DEBUG says (spec §1.2).
    re_path(r"", errors.not_found),
]

handler404 = errors.not_found
handler500 = errors.server_error
