"""One module per IKEv2 exchange (strongSwan libcharon's task split)."""
