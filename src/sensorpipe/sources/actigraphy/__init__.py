"""Actigraphy recordings: one adapter module per vendor format, the device clock and epochs shared in ``_epochs``.

* :mod:`.awd`: Actiwatch ``.AWD`` (7-line header, epoch code).
* :mod:`.agd`: ActiGraph ``.agd`` (SQLite, .NET-tick times).
* :mod:`.mtn`: CamNtech MotionWatch ``.mtn`` (XML).
* :mod:`.actiware`: Philips Respironics Actiware ``.csv`` exports (localized EN/FR/DE preamble and columns).
* :mod:`.acttrust`: Condor ActTrust ``.txt`` exports.

Every format feeds ``activity_counts`` (summed to minutes) and, where the
device has a light sensor, ``light`` (averaged); vendor off-wrist flags feed
``on_wrist``.
"""
