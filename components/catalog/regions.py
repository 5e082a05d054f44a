"""Regions and zones of Google Cloud and AWS, so a typo is caught before anything is created.

A dated list: clouds open new regions, so a region newer than this list is allowed with
``platform.allowUnlistedRegion: true`` (the pattern of a region name still applies, and
the cloud itself refuses names that do not exist).

Compiled on 2026-11-29 from the providers' own region pages as last known to the
author (their 2025 content; no live check was possible from this machine):

* Google Cloud: https://cloud.google.com/compute/docs/regions-zones ("Available regions
  and zones"). Zones are the region name plus a letter; most regions have a, b, c;
  us-central1 has a, b, c, f; us-east1 and europe-west1 have b, c, d.
* AWS: https://docs.aws.amazon.com/global-infrastructure/latest/regions/aws-regions.html
  and ``aws ec2 describe-availability-zones``. Zone names are the region plus a letter;
  the letters are mapped per account, so the list holds every letter the region has.
"""

from __future__ import annotations

REGIONS_AS_OF = "2026-11-29"

_ABC = "abc"

# region -> zone letters
GCP_REGIONS: dict[str, str] = {
    "africa-south1": _ABC,
    "asia-east1": _ABC,
    "asia-east2": _ABC,
    "asia-northeast1": _ABC,
    "asia-northeast2": _ABC,
    "asia-northeast3": _ABC,
    "asia-south1": _ABC,
    "asia-south2": _ABC,
    "asia-southeast1": _ABC,
    "asia-southeast2": _ABC,
    "australia-southeast1": _ABC,
    "australia-southeast2": _ABC,
    "europe-central2": _ABC,
    "europe-north1": _ABC,
    "europe-north2": _ABC,
    "europe-southwest1": _ABC,
    "europe-west1": "bcd",
    "europe-west10": _ABC,
    "europe-west12": _ABC,
    "europe-west2": _ABC,
    "europe-west3": _ABC,
    "europe-west4": _ABC,
    "europe-west6": _ABC,
    "europe-west8": _ABC,
    "europe-west9": _ABC,
    "me-central1": _ABC,
    "me-central2": _ABC,
    "me-west1": _ABC,
    "northamerica-northeast1": _ABC,
    "northamerica-northeast2": _ABC,
    "northamerica-south1": _ABC,
    "southamerica-east1": _ABC,
    "southamerica-west1": _ABC,
    "us-central1": "abcf",
    "us-east1": "bcd",
    "us-east4": _ABC,
    "us-east5": _ABC,
    "us-south1": _ABC,
    "us-west1": _ABC,
    "us-west2": _ABC,
    "us-west3": _ABC,
    "us-west4": _ABC,
}

AWS_REGIONS: dict[str, str] = {
    "af-south-1": _ABC,
    "ap-east-1": _ABC,
    "ap-east-2": _ABC,
    "ap-northeast-1": "acd",
    "ap-northeast-2": "abcd",
    "ap-northeast-3": _ABC,
    "ap-south-1": _ABC,
    "ap-south-2": _ABC,
    "ap-southeast-1": _ABC,
    "ap-southeast-2": _ABC,
    "ap-southeast-3": _ABC,
    "ap-southeast-4": _ABC,
    "ap-southeast-5": _ABC,
    "ap-southeast-7": _ABC,
    "ca-central-1": "abd",
    "ca-west-1": _ABC,
    "eu-central-1": _ABC,
    "eu-central-2": _ABC,
    "eu-north-1": _ABC,
    "eu-south-1": _ABC,
    "eu-south-2": _ABC,
    "eu-west-1": _ABC,
    "eu-west-2": _ABC,
    "eu-west-3": _ABC,
    "il-central-1": _ABC,
    "me-central-1": _ABC,
    "me-south-1": _ABC,
    "mx-central-1": _ABC,
    "sa-east-1": _ABC,
    "us-east-1": "abcdef",
    "us-east-2": _ABC,
    "us-gov-east-1": _ABC,
    "us-gov-west-1": _ABC,
    "us-west-1": _ABC,
    "us-west-2": "abcd",
}


def gcp_zones(region: str) -> list[str]:
    return [f"{region}-{letter}" for letter in GCP_REGIONS.get(region, "")]


def aws_zones(region: str) -> list[str]:
    return [f"{region}{letter}" for letter in AWS_REGIONS.get(region, "")]
