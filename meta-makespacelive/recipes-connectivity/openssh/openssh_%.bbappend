# SSH host keys on /data: generated once (sshd_check_keys), kept across updates of the
# read-only root, where oe-core would put them in /var/run, new on every boot.
OPENSSH_HOST_KEY_DIR_READONLY_CONFIG:makespacelive-os = "/data/ssh"
