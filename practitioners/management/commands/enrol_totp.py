"""Give a staff account a TOTP device (django-otp) and print the URL its authenticator app reads."""

from __future__ import annotations

from django.conf import settings
from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand, CommandError
from django.db import transaction
from django_otp.plugins.otp_totp.models import TOTPDevice


class Command(BaseCommand):
    help = (
        "Enrol a staff account for the admin's second factor: creates a TOTP device and prints "
        "its otpauth:// URL (paste it into an authenticator app, or make a QR code of it). "
        "Needed before ADMIN_REQUIRE_OTP=true lets that account in."
    )

    def add_arguments(self, parser) -> None:
        parser.add_argument("username")
        parser.add_argument("--name", default="authenticator", help="the device's name")
        parser.add_argument(
            "--replace", action="store_true", help="remove the account's other TOTP devices"
        )
        parser.add_argument("--dry-run", action="store_true", help="say what would be done")

    def handle(self, *args, username: str, name: str, replace: bool, dry_run: bool, **options):
        user = get_user_model().objects.filter(username=username).first()
        if user is None:
            raise CommandError(f"No account named {username!r}.")
        if not user.is_staff:
            raise CommandError(f"{username!r} is not staff: the admin would not let it in anyway.")
        existing = TOTPDevice.objects.filter(user=user)
        if dry_run:
            removing = f", removing {existing.count()} other device(s)" if replace else ""
            self.stdout.write(f"Would enrol a TOTP device {name!r} for {username}{removing}.")
            return
        with transaction.atomic():
            if replace:
                existing.delete()
            device = TOTPDevice.objects.create(user=user, name=name, confirmed=True)
        if options["verbosity"] >= 1:
            self.stdout.write(
                f"Enrolled {name!r} for {username}. Add it to an authenticator app with this URL "
                f"(issuer {settings.OTP_TOTP_ISSUER!r}); keep it secret:"
            )
        self.stdout.write(device.config_url)
