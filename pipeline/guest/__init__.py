"""Guest: rootfs and initramfs, the QEMU command line and lifecycle, topology checks, SSH."""
