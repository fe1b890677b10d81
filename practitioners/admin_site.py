"""The admin site, asking staff for a TOTP code (django-otp) when settings.ADMIN_REQUIRE_OTP is on.

The setting is read per request rather than when the URLs load, so one admin site serves both
modes (and the tests can switch it)."""

from __future__ import annotations

from django.conf import settings
from django.contrib.admin import AdminSite
from django.http import HttpRequest
from django_otp.admin import OTPAdminAuthenticationForm, OTPAdminSite


class StaffAdminSite(AdminSite):
    @property
    def login_form(self):  # type: ignore[override]
        return OTPAdminAuthenticationForm if settings.ADMIN_REQUIRE_OTP else None

    @property
    def login_template(self):  # type: ignore[override]
        return OTPAdminSite.login_template if settings.ADMIN_REQUIRE_OTP else None

    def has_permission(self, request: HttpRequest) -> bool:
        # A signed-in staff member without a verified device is treated as not staff: the
        # admin sends them to its sign-in page, which asks for the code.
        allowed = super().has_permission(request)
        if allowed and settings.ADMIN_REQUIRE_OTP:
            return request.user.is_verified()
        return allowed
