"""Control stage: IKE control of a gateway, keying (manual and negotiated SAs -> `SaSpec`),
per-VPN verdicts, and SA distribution/placement (`control.distribution`, Table 1)."""
