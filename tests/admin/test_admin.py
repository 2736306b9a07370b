"""The Django admin manages basins and streams through the same services and rules as the API."""

from __future__ import annotations

from typing import Any

import pytest
from django.contrib.auth import get_user_model
from django.test import Client

from basins import services as basin_services
from basins.models import Basin
from storagecore.config import (
    BasinConfig,
    OptionalStreamConfig,
    RetentionPolicy,
    TimestampingMode,
)
from streams import services as stream_services
from streams.models import Stream

pytestmark = pytest.mark.django_db


@pytest.fixture
def admin_client_logged_in() -> Client:
    user = get_user_model().objects.create_superuser("root", "root@example.com", "pw")
    client = Client()
    client.force_login(user)
    return client


def _basin_form(**overrides: Any) -> dict[str, Any]:
    data = {
        "name": "admin-basin",
        "stream_cipher": "",
        "storage_class": "",
        "retention_policy": "",
        "retention_age_s": "",
        "timestamping_mode": "",
        "timestamping_uncapped": "",
        "delete_on_empty_min_age_s": "",
    }
    data.update(overrides)
    return data


def test_changelist_search_and_state_filter(admin_client_logged_in: Client) -> None:
    basin_services.do_create_basin("alpha-basin", BasinConfig(), None)
    basin_services.do_create_basin("beta-basin-x", BasinConfig(), None)
    basin_services.do_delete_basin("beta-basin-x")

    page = admin_client_logged_in.get("/admin/basins/basin/")
    assert page.status_code == 200
    assert b"alpha-basin" in page.content and b"beta-basin-x" in page.content

    searched = admin_client_logged_in.get("/admin/basins/basin/", {"q": "alpha"})
    assert b"alpha-basin" in searched.content and b"beta-basin-x" not in searched.content

    deleting = admin_client_logged_in.get("/admin/basins/basin/", {"state": "deleting"})
    assert b"beta-basin-x" in deleting.content and b"alpha-basin" not in deleting.content


def test_add_basin_uses_api_validation(admin_client_logged_in: Client) -> None:
    bad_name = admin_client_logged_in.post("/admin/basins/basin/add/", _basin_form(name="Bad"))
    assert bad_name.status_code == 200
    assert b"basin name should be at least 8 bytes in length" in bad_name.content

    zero_age = admin_client_logged_in.post(
        "/admin/basins/basin/add/", _basin_form(retention_policy="age", retention_age_s="0")
    )
    assert zero_age.status_code == 200
    assert b"age must be greater than 0 seconds" in zero_age.content
    assert not Basin.objects.exists()

    created = admin_client_logged_in.post(
        "/admin/basins/basin/add/",
        _basin_form(
            retention_policy="infinite",
            timestamping_mode="arrival",
            create_stream_on_append="on",
        ),
    )
    assert created.status_code == 302
    config = Basin.objects.get(name="admin-basin").basin_config()
    assert config.create_stream_on_append is True
    assert config.default_stream_config == OptionalStreamConfig(
        retention_policy=RetentionPolicy(None), timestamping_mode=TimestampingMode.ARRIVAL
    )


def test_edit_and_delete_stream(admin_client_logged_in: Client) -> None:
    basin = basin_services.do_create_basin("edit-basin", BasinConfig(), None).basin
    stream = stream_services.do_create_stream(
        "edit-basin", "orders", OptionalStreamConfig(), None
    ).stream

    url = f"/admin/streams/stream/{stream.pk}/change/"
    form = admin_client_logged_in.get(url)
    assert form.status_code == 200
    assert b"604800" in form.content  # the resolved retention is shown

    changed = admin_client_logged_in.post(
        url,
        {
            "storage_class": "standard",
            "retention_policy": "age",
            "retention_age_s": "3600",
            "timestamping_mode": "",
            "timestamping_uncapped": "true",
            "delete_on_empty_min_age_s": "",
        },
    )
    assert changed.status_code == 302
    config = Stream.objects.get(pk=stream.pk).stream_config()
    assert config.storage_class.value == "standard"
    assert config.retention_policy.age_s == 3600
    assert config.timestamping_uncapped is True

    deleted = admin_client_logged_in.post(
        f"/admin/streams/stream/{stream.pk}/delete/", {"post": "yes"}
    )
    assert deleted.status_code == 302
    # Deletion goes through the service: the stream is marked, then removed asynchronously.
    assert Stream.objects.get(pk=stream.pk).is_deleting
    assert basin.streams.count() == 1


def test_delete_basin_marks_it_deleting(admin_client_logged_in: Client) -> None:
    basin = basin_services.do_create_basin("gone-basin", BasinConfig(), None).basin
    response = admin_client_logged_in.post(
        f"/admin/basins/basin/{basin.pk}/delete/", {"post": "yes"}
    )
    assert response.status_code == 302
    assert Basin.objects.get(pk=basin.pk).is_deleting
    edit = admin_client_logged_in.post(
        f"/admin/basins/basin/{basin.pk}/change/", _basin_form(name="gone-basin")
    )
    assert edit.status_code == 200
    assert b"This basin is being deleted." in edit.content
