"""`openstack fleet ...`: StackFleet as a python-openstackclient plugin (an interface,
like the CLI and the API). It talks to a StackFleet API found in the service catalog
(service type `fleet`) or given with --fleet-url, with the Keystone token of the same
clouds.yaml entry, or a StackFleet local token."""
