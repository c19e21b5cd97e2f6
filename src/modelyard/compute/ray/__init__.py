"""The Ray cluster compute target: provisioning, lifecycle, admission, placement.

``vm_sizes`` holds the catalogue of v1 VM sizes, ``provisioning`` what
``AmlCompute.provisioning_configuration(...)`` returns and the autoscaler config of a cluster on
this machine, ``launcher_config`` the Ray cluster-launcher file of ``modelyard compute export``.
Nothing here imports Ray when it is imported: a plain install has no Ray.
"""
