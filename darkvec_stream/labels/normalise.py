"""Label normalisation: one spelling per scanning organisation, whatever the list.

Scanner lists name the same organisation in many ways (``u_mich``,
``univmichigan``, ``University of Michigan``, ``researchscan1.eecs.umich.edu``).
This module maps each spelling to one canonical label, using the DarkVec
ground-truth class names where such a class exists. It does not decide
which source wins a conflict; that is the label book's job.
"""

from __future__ import annotations

import ipaddress
import re
from pathlib import Path
from typing import Mapping

# Labels that mean "no label" in the lists we read (ScannerGrouper writes
# ``unknown`` for every unlabelled sender).
UNLABELLED = frozenset({"", "unknown", "none", "n_a", "na", "null", "unlabelled", "unlabeled"})

# Slug (lowercase, non-alphanumeric runs replaced by "_") to canonical label.
# Canonical names follow the DarkVec 2021 ground truth where it has the class.
LABEL_ALIASES: Mapping[str, str] = {
    # University of Michigan research scans.
    "umich": "u_mich",
    "engin_umich": "u_mich",
    "univmichigan": "u_mich",
    "university_of_michigan": "u_mich",
    "univuniversity_of_michiganigan": "u_mich",  # a typo present in the NICT lists
    "stanford": "u_stanford",
    "stanford_university": "u_stanford",
    "caida": "u_caida_ark",
    "isi": "u_isi_ant",
    "ant_lab": "u_isi_ant",
    # Commercial scanners.
    "alphastrikelabs": "alphastrike",
    "alpha_strike_labs": "alphastrike",
    "alphastrike_research": "alphastrike",
    "limes_security_alpha_strike_labs": "alphastrike",
    "netsystemsresearch": "netsystems",
    "net_systems_research": "netsystems",
    "strechoid": "stretchoid",  # file name misspelt in the OpenFilters lists
    "rapid7sonar": "rapid7",
    "rapid7_project_sonar": "rapid7",
    "internet_census": "internetcensus",
    "internet_census_group": "internetcensus",
    "bitsight_internet_census_group": "internetcensus",
    "cortex_xpanse": "expanse",
    "palo_alto_networks_cortex_xpanse": "expanse",
    "paloaltonetworks": "expanse",
    "netscout_arbor": "arbor",
    "the_recyber_project": "recyber",
    "open_port_stats": "openportstats",
    "a_recorded_future_securitytrails": "securitytrails",
    "erratasec": "errata",
    "driftnet_internet_measurement_com": "driftnet",
    "internetmeasurement": "driftnet",
    "internetmeasurementresearch": "driftnet",
    "nokia": "deepfield",
    "nokia_deepfield": "deepfield",
    "cyble_odin": "odin",
    "upguard_cyberresilience": "cyberresilience",
    "qrator_qrator_radar": "qrator",
    "crowd_strike_reposify": "reposify",
    "bufferover": "bufferoverrun",
    "bufferover_run": "bufferoverrun",
    "research_scanner_com": "research_scanner",
    "researchscanner": "research_scanner",
    "academyforinternetresarch": "academyforinternetresearch",  # misspelt file name
    "academy_for_internet_research": "academyforinternetresearch",
    "criminal_ip": "criminalip",
    "modat_scanner": "modat",
    "onyphe_scanner": "onyphe",
    "apple_applebot": "applebot",
    "facebook_facebookbot": "facebookbot",
    "microsoft_bing_crawler": "bingbot",
}

_NON_ALNUM = re.compile(r"[^a-z0-9]+")
_FILE_SUFFIXES = re.compile(r"(_v4|_v6|-nt-scanning|-scanning|-scanner)$")
# MISP warning-list names wrap the organisation in boilerplate, for example
# "List of published IP address ranges for Onyphe Scanner" or
# "Shodan IP-Ranges, pot. used for Scanning".
_MISP_PREFIX = re.compile(r"^list of published ip address ranges for\s+")
_MISP_TAIL = re.compile(r"\s+ip[\s-].*$")
_MISP_SCANNERS = re.compile(r"\s+scanners?$")
_SECOND_LEVEL_SUFFIXES = frozenset({"co", "ac", "com", "edu", "org", "net", "gov"})


def slug(text: str) -> str:
    """Lowercase ``text`` and join its alphanumeric runs with underscores."""
    return _NON_ALNUM.sub("_", text.strip().lower()).strip("_")


def normalise_label(raw: str) -> str | None:
    """Return the canonical label for ``raw``, or None when it means "no label"."""
    key = slug(raw)
    if key in UNLABELLED:
        return None
    return LABEL_ALIASES.get(key, key)


def label_from_file_name(path: Path) -> str | None:
    """Derive a label from a list's file name: ``censys_v4.txt`` gives ``censys``."""
    name = path.name
    for suffix in (".gz", ".txt", ".json", ".csv", ".lst", ".list"):
        if name.lower().endswith(suffix):
            name = name[: -len(suffix)]
    return normalise_label(_FILE_SUFFIXES.sub("", name))


def label_from_misp_name(name: str) -> str | None:
    """Derive a label from a MISP warning-list ``name`` field."""
    text = name.strip().lower()
    if _MISP_PREFIX.match(text):
        # "... ranges for Onyphe Scanner": the trailing word is boilerplate here,
        # but part of the name in "Research scanner IP Ranges ...".
        text = _MISP_SCANNERS.sub("", _MISP_PREFIX.sub("", text))
    return normalise_label(_MISP_TAIL.sub("", text))


def label_from_host(comment: str) -> str | None:
    """Derive a label from an inline comment naming a host or an organisation.

    A host name gives its registered-domain label (``scan3.eecs.umich.edu``
    gives ``u_mich``, ``binaryedge.ninja`` gives ``binaryedge``). A comment
    that is itself an address, or is ``(unknown)``, gives None so that the
    caller falls back to the source's own label.
    """
    text = comment.strip()
    if not text:
        return None
    first = text.split()[0].strip(".")
    try:
        ipaddress.ip_address(first)
        return None
    except ValueError:
        pass
    if "." in first:
        parts = [part for part in first.lower().split(".") if part]
        # The label left of the public suffix names the organisation. Two-level
        # public suffixes (co.uk, ac.jp) are rare among scanners but handled.
        if len(parts) >= 3 and parts[-2] in _SECOND_LEVEL_SUFFIXES:
            return normalise_label(parts[-3])
        return normalise_label(parts[-2])
    return normalise_label(text)
