"""Country codes and the time zone each one's local hour is computed in.

The project's rule is that a country's local time is that of its capital, so a country spanning
several zones (US, BR, RU, ...) gets one zone: hour-of-day KPIs then compare countries, not cities.
The code list is the 249 ISO 3166-1 alpha-2 codes of the tz database's ``iso3166.tab`` plus
Spotify's ``XK`` (Kosovo) and ``ZZ`` (unknown). Territories without a capital take the capital of
the state that runs them; Antarctica, with neither, is UTC.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

UNKNOWN_COUNTRY = "ZZ"

COUNTRY_TIMEZONES: dict[str, str] = {
    "AD": "Europe/Andorra",  # Andorra
    "AE": "Asia/Dubai",  # United Arab Emirates
    "AF": "Asia/Kabul",  # Afghanistan
    "AG": "America/Antigua",  # Antigua & Barbuda
    "AI": "America/Anguilla",  # Anguilla
    "AL": "Europe/Tirane",  # Albania
    "AM": "Asia/Yerevan",  # Armenia
    "AO": "Africa/Luanda",  # Angola
    "AQ": "UTC",  # Antarctica (no capital or administering state)
    "AR": "America/Argentina/Buenos_Aires",  # Argentina
    "AS": "Pacific/Pago_Pago",  # Samoa (American)
    "AT": "Europe/Vienna",  # Austria
    "AU": "Australia/Sydney",  # Australia (capital zone: Canberra)
    "AW": "America/Aruba",  # Aruba
    "AX": "Europe/Mariehamn",  # Åland Islands
    "AZ": "Asia/Baku",  # Azerbaijan
    "BA": "Europe/Sarajevo",  # Bosnia & Herzegovina
    "BB": "America/Barbados",  # Barbados
    "BD": "Asia/Dhaka",  # Bangladesh
    "BE": "Europe/Brussels",  # Belgium
    "BF": "Africa/Ouagadougou",  # Burkina Faso
    "BG": "Europe/Sofia",  # Bulgaria
    "BH": "Asia/Bahrain",  # Bahrain
    "BI": "Africa/Bujumbura",  # Burundi
    "BJ": "Africa/Porto-Novo",  # Benin
    "BL": "America/St_Barthelemy",  # St Barthelemy
    "BM": "Atlantic/Bermuda",  # Bermuda
    "BN": "Asia/Brunei",  # Brunei
    "BO": "America/La_Paz",  # Bolivia
    "BQ": "America/Kralendijk",  # Caribbean NL
    "BR": "America/Sao_Paulo",  # Brazil (capital zone: Brasília)
    "BS": "America/Nassau",  # Bahamas
    "BT": "Asia/Thimphu",  # Bhutan
    "BV": "Europe/Oslo",  # Bouvet Island (uninhabited; administered from Oslo)
    "BW": "Africa/Gaborone",  # Botswana
    "BY": "Europe/Minsk",  # Belarus
    "BZ": "America/Belize",  # Belize
    "CA": "America/Toronto",  # Canada (capital zone: Ottawa)
    "CC": "Indian/Cocos",  # Cocos (Keeling) Islands
    "CD": "Africa/Kinshasa",  # Congo (Dem. Rep.)
    "CF": "Africa/Bangui",  # Central African Rep.
    "CG": "Africa/Brazzaville",  # Congo (Rep.)
    "CH": "Europe/Zurich",  # Switzerland
    "CI": "Africa/Abidjan",  # Côte d'Ivoire
    "CK": "Pacific/Rarotonga",  # Cook Islands
    "CL": "America/Santiago",  # Chile
    "CM": "Africa/Douala",  # Cameroon
    "CN": "Asia/Shanghai",  # China (capital zone: Beijing)
    "CO": "America/Bogota",  # Colombia
    "CR": "America/Costa_Rica",  # Costa Rica
    "CU": "America/Havana",  # Cuba
    "CV": "Atlantic/Cape_Verde",  # Cape Verde
    "CW": "America/Curacao",  # Curaçao
    "CX": "Indian/Christmas",  # Christmas Island
    "CY": "Asia/Nicosia",  # Cyprus
    "CZ": "Europe/Prague",  # Czech Republic
    "DE": "Europe/Berlin",  # Germany
    "DJ": "Africa/Djibouti",  # Djibouti
    "DK": "Europe/Copenhagen",  # Denmark
    "DM": "America/Dominica",  # Dominica
    "DO": "America/Santo_Domingo",  # Dominican Republic
    "DZ": "Africa/Algiers",  # Algeria
    "EC": "America/Guayaquil",  # Ecuador (capital zone: Quito)
    "EE": "Europe/Tallinn",  # Estonia
    "EG": "Africa/Cairo",  # Egypt
    "EH": "Africa/El_Aaiun",  # Western Sahara
    "ER": "Africa/Asmara",  # Eritrea
    "ES": "Europe/Madrid",  # Spain
    "ET": "Africa/Addis_Ababa",  # Ethiopia
    "FI": "Europe/Helsinki",  # Finland
    "FJ": "Pacific/Fiji",  # Fiji
    "FK": "Atlantic/Stanley",  # Falkland Islands
    "FM": "Pacific/Pohnpei",  # Micronesia (capital zone: Palikir)
    "FO": "Atlantic/Faroe",  # Faroe Islands
    "FR": "Europe/Paris",  # France
    "GA": "Africa/Libreville",  # Gabon
    "GB": "Europe/London",  # Britain (UK)
    "GD": "America/Grenada",  # Grenada
    "GE": "Asia/Tbilisi",  # Georgia
    "GF": "America/Cayenne",  # French Guiana
    "GG": "Europe/Guernsey",  # Guernsey
    "GH": "Africa/Accra",  # Ghana
    "GI": "Europe/Gibraltar",  # Gibraltar
    "GL": "America/Nuuk",  # Greenland
    "GM": "Africa/Banjul",  # Gambia
    "GN": "Africa/Conakry",  # Guinea
    "GP": "America/Guadeloupe",  # Guadeloupe
    "GQ": "Africa/Malabo",  # Equatorial Guinea
    "GR": "Europe/Athens",  # Greece
    "GS": "Atlantic/South_Georgia",  # South Georgia & the South Sandwich Islands
    "GT": "America/Guatemala",  # Guatemala
    "GU": "Pacific/Guam",  # Guam
    "GW": "Africa/Bissau",  # Guinea-Bissau
    "GY": "America/Guyana",  # Guyana
    "HK": "Asia/Hong_Kong",  # Hong Kong
    "HM": "Australia/Sydney",  # Heard & McDonald Is. (uninhabited; run from Canberra)
    "HN": "America/Tegucigalpa",  # Honduras
    "HR": "Europe/Zagreb",  # Croatia
    "HT": "America/Port-au-Prince",  # Haiti
    "HU": "Europe/Budapest",  # Hungary
    "ID": "Asia/Jakarta",  # Indonesia
    "IE": "Europe/Dublin",  # Ireland
    "IL": "Asia/Jerusalem",  # Israel
    "IM": "Europe/Isle_of_Man",  # Isle of Man
    "IN": "Asia/Kolkata",  # India
    "IO": "Indian/Chagos",  # British Indian Ocean Territory
    "IQ": "Asia/Baghdad",  # Iraq
    "IR": "Asia/Tehran",  # Iran
    "IS": "Atlantic/Reykjavik",  # Iceland
    "IT": "Europe/Rome",  # Italy
    "JE": "Europe/Jersey",  # Jersey
    "JM": "America/Jamaica",  # Jamaica
    "JO": "Asia/Amman",  # Jordan
    "JP": "Asia/Tokyo",  # Japan
    "KE": "Africa/Nairobi",  # Kenya
    "KG": "Asia/Bishkek",  # Kyrgyzstan
    "KH": "Asia/Phnom_Penh",  # Cambodia
    "KI": "Pacific/Tarawa",  # Kiribati (capital zone: South Tarawa)
    "KM": "Indian/Comoro",  # Comoros
    "KN": "America/St_Kitts",  # St Kitts & Nevis
    "KP": "Asia/Pyongyang",  # Korea (North)
    "KR": "Asia/Seoul",  # Korea (South)
    "KW": "Asia/Kuwait",  # Kuwait
    "KY": "America/Cayman",  # Cayman Islands
    "KZ": "Asia/Almaty",  # Kazakhstan (capital zone: Astana)
    "LA": "Asia/Vientiane",  # Laos
    "LB": "Asia/Beirut",  # Lebanon
    "LC": "America/St_Lucia",  # St Lucia
    "LI": "Europe/Vaduz",  # Liechtenstein
    "LK": "Asia/Colombo",  # Sri Lanka
    "LR": "Africa/Monrovia",  # Liberia
    "LS": "Africa/Maseru",  # Lesotho
    "LT": "Europe/Vilnius",  # Lithuania
    "LU": "Europe/Luxembourg",  # Luxembourg
    "LV": "Europe/Riga",  # Latvia
    "LY": "Africa/Tripoli",  # Libya
    "MA": "Africa/Casablanca",  # Morocco
    "MC": "Europe/Monaco",  # Monaco
    "MD": "Europe/Chisinau",  # Moldova
    "ME": "Europe/Podgorica",  # Montenegro
    "MF": "America/Marigot",  # St Martin (French)
    "MG": "Indian/Antananarivo",  # Madagascar
    "MH": "Pacific/Majuro",  # Marshall Islands
    "MK": "Europe/Skopje",  # North Macedonia
    "ML": "Africa/Bamako",  # Mali
    "MM": "Asia/Yangon",  # Myanmar (Burma)
    "MN": "Asia/Ulaanbaatar",  # Mongolia
    "MO": "Asia/Macau",  # Macau
    "MP": "Pacific/Saipan",  # Northern Mariana Islands
    "MQ": "America/Martinique",  # Martinique
    "MR": "Africa/Nouakchott",  # Mauritania
    "MS": "America/Montserrat",  # Montserrat
    "MT": "Europe/Malta",  # Malta
    "MU": "Indian/Mauritius",  # Mauritius
    "MV": "Indian/Maldives",  # Maldives
    "MW": "Africa/Blantyre",  # Malawi
    "MX": "America/Mexico_City",  # Mexico
    "MY": "Asia/Kuala_Lumpur",  # Malaysia
    "MZ": "Africa/Maputo",  # Mozambique
    "NA": "Africa/Windhoek",  # Namibia
    "NC": "Pacific/Noumea",  # New Caledonia
    "NE": "Africa/Niamey",  # Niger
    "NF": "Pacific/Norfolk",  # Norfolk Island
    "NG": "Africa/Lagos",  # Nigeria
    "NI": "America/Managua",  # Nicaragua
    "NL": "Europe/Amsterdam",  # Netherlands
    "NO": "Europe/Oslo",  # Norway
    "NP": "Asia/Kathmandu",  # Nepal
    "NR": "Pacific/Nauru",  # Nauru
    "NU": "Pacific/Niue",  # Niue
    "NZ": "Pacific/Auckland",  # New Zealand (capital zone: Wellington)
    "OM": "Asia/Muscat",  # Oman
    "PA": "America/Panama",  # Panama
    "PE": "America/Lima",  # Peru
    "PF": "Pacific/Tahiti",  # French Polynesia (capital zone: Papeete)
    "PG": "Pacific/Port_Moresby",  # Papua New Guinea
    "PH": "Asia/Manila",  # Philippines
    "PK": "Asia/Karachi",  # Pakistan
    "PL": "Europe/Warsaw",  # Poland
    "PM": "America/Miquelon",  # St Pierre & Miquelon
    "PN": "Pacific/Pitcairn",  # Pitcairn
    "PR": "America/Puerto_Rico",  # Puerto Rico
    "PS": "Asia/Hebron",  # Palestine (capital zone: Ramallah, West Bank)
    "PT": "Europe/Lisbon",  # Portugal
    "PW": "Pacific/Palau",  # Palau
    "PY": "America/Asuncion",  # Paraguay
    "QA": "Asia/Qatar",  # Qatar
    "RE": "Indian/Reunion",  # Réunion
    "RO": "Europe/Bucharest",  # Romania
    "RS": "Europe/Belgrade",  # Serbia
    "RU": "Europe/Moscow",  # Russia
    "RW": "Africa/Kigali",  # Rwanda
    "SA": "Asia/Riyadh",  # Saudi Arabia
    "SB": "Pacific/Guadalcanal",  # Solomon Islands
    "SC": "Indian/Mahe",  # Seychelles
    "SD": "Africa/Khartoum",  # Sudan
    "SE": "Europe/Stockholm",  # Sweden
    "SG": "Asia/Singapore",  # Singapore
    "SH": "Atlantic/St_Helena",  # St Helena
    "SI": "Europe/Ljubljana",  # Slovenia
    "SJ": "Arctic/Longyearbyen",  # Svalbard & Jan Mayen
    "SK": "Europe/Bratislava",  # Slovakia
    "SL": "Africa/Freetown",  # Sierra Leone
    "SM": "Europe/San_Marino",  # San Marino
    "SN": "Africa/Dakar",  # Senegal
    "SO": "Africa/Mogadishu",  # Somalia
    "SR": "America/Paramaribo",  # Suriname
    "SS": "Africa/Juba",  # South Sudan
    "ST": "Africa/Sao_Tome",  # Sao Tome & Principe
    "SV": "America/El_Salvador",  # El Salvador
    "SX": "America/Lower_Princes",  # St Maarten (Dutch)
    "SY": "Asia/Damascus",  # Syria
    "SZ": "Africa/Mbabane",  # Eswatini (Swaziland)
    "TC": "America/Grand_Turk",  # Turks & Caicos Is
    "TD": "Africa/Ndjamena",  # Chad
    "TF": "Indian/Reunion",  # French S. Terr. (administered from Saint-Pierre, Réunion)
    "TG": "Africa/Lome",  # Togo
    "TH": "Asia/Bangkok",  # Thailand
    "TJ": "Asia/Dushanbe",  # Tajikistan
    "TK": "Pacific/Fakaofo",  # Tokelau
    "TL": "Asia/Dili",  # East Timor
    "TM": "Asia/Ashgabat",  # Turkmenistan
    "TN": "Africa/Tunis",  # Tunisia
    "TO": "Pacific/Tongatapu",  # Tonga
    "TR": "Europe/Istanbul",  # Turkey
    "TT": "America/Port_of_Spain",  # Trinidad & Tobago
    "TV": "Pacific/Funafuti",  # Tuvalu
    "TW": "Asia/Taipei",  # Taiwan
    "TZ": "Africa/Dar_es_Salaam",  # Tanzania
    "UA": "Europe/Kyiv",  # Ukraine
    "UG": "Africa/Kampala",  # Uganda
    "UM": "America/New_York",  # US minor outlying islands (no capital; run from D.C.)
    "US": "America/New_York",  # United States (capital zone: Washington, D.C.)
    "UY": "America/Montevideo",  # Uruguay
    "UZ": "Asia/Tashkent",  # Uzbekistan
    "VA": "Europe/Vatican",  # Vatican City
    "VC": "America/St_Vincent",  # St Vincent
    "VE": "America/Caracas",  # Venezuela
    "VG": "America/Tortola",  # Virgin Islands (UK)
    "VI": "America/St_Thomas",  # Virgin Islands (US)
    "VN": "Asia/Ho_Chi_Minh",  # Vietnam
    "VU": "Pacific/Efate",  # Vanuatu
    "WF": "Pacific/Wallis",  # Wallis & Futuna
    "WS": "Pacific/Apia",  # Samoa (western)
    "YE": "Asia/Aden",  # Yemen
    "YT": "Indian/Mayotte",  # Mayotte
    "ZA": "Africa/Johannesburg",  # South Africa
    "ZM": "Africa/Lusaka",  # Zambia
    "ZW": "Africa/Harare",  # Zimbabwe
    "XK": "Europe/Belgrade",  # Kosovo (Spotify's code; not ISO-assigned)
    UNKNOWN_COUNTRY: "UTC",
}

KNOWN_COUNTRIES: frozenset[str] = frozenset(COUNTRY_TIMEZONES)

_UTC = "UTC"


def _utc_index(instants: pd.Series) -> pd.DatetimeIndex:
    """Instants as a UTC DatetimeIndex; naive or null instants are refused, not guessed at."""
    if not isinstance(instants.dtype, pd.DatetimeTZDtype):
        raise TypeError(f"instants must be tz-aware datetimes, got dtype {instants.dtype}")
    index = pd.DatetimeIndex(instants).tz_convert(_UTC)
    if index.hasnans:
        raise ValueError("instants contain nulls; there is no hour to give them")
    return index


def local_hour(instants: pd.Series, countries: pd.Series) -> pd.Series:
    """Hour of day (0-23, int8) of each instant in its country's capital time zone.

    Rows are paired by position and the result takes ``instants``' index. Country codes are
    matched case-insensitively; null, unknown and ``ZZ`` rows get the UTC hour. The work is one
    ``tz_convert`` per distinct zone rather than per row.
    Zone names resolve through pandas (pytz under pandas 2), whose offsets follow DST.
    """
    if len(instants) != len(countries):
        raise ValueError(f"{len(instants)} instants but {len(countries)} countries")
    utc = _utc_index(instants)
    hours = utc.hour.to_numpy(dtype=np.int8)

    codes, uniques = pd.factorize(countries.to_numpy(), use_na_sentinel=True)
    zone_names = [COUNTRY_TIMEZONES.get(str(code).strip().upper(), _UTC) for code in uniques]
    zones = sorted(set(zone_names) - {_UTC})
    if zones:
        zone_id = {zone: i for i, zone in enumerate(zones)}
        # The extra last slot is what the -1 code of a null country indexes: no zone, UTC hour.
        zone_of_code = np.array([zone_id.get(name, -1) for name in zone_names] + [-1], np.int16)
        row_zone = zone_of_code[codes]
        order = np.argsort(row_zone, kind="stable")
        bounds = np.searchsorted(row_zone[order], np.arange(len(zones) + 1))
        for i, zone in enumerate(zones):
            rows = order[bounds[i] : bounds[i + 1]]
            if len(rows):
                hours[rows] = utc[rows].tz_convert(zone).hour.to_numpy(dtype=np.int8)
    return pd.Series(hours, index=instants.index, name="local_hour")
