#!/usr/bin/perl
# The gateway container's entry point: binds the gateway's two listening
# sockets, says so on stdout, then becomes the gateway's Node process (exec
# keeps the PID and the sockets). While Node boots, the kernel completes the
# agent's connections and holds them in the listen backlog, so the agent can
# start alongside the gateway: its first connection waits instead of being
# refused. Usage: GATEWAY_LISTEN_ADDRESS=IPV4 listen.pl PROXY_PORT CREDENTIAL_PORT
#
# The sockets are bound to the gateway's address on the bottle's internal
# network only: the gateway's other interface is on the egress bridge, which the
# host (and whatever else runs there) can reach, and the credential port injects
# real secrets for whoever connects.

use strict;
use warnings;
use Socket qw(PF_INET SOCK_STREAM SOL_SOCKET SO_REUSEADDR inet_aton pack_sockaddr_in);

# Descriptors opened while $^F is this high carry no close-on-exec flag: Node inherits them.
BEGIN { $^F = 1023 }

my @ports = @ARGV;
die "gateway: usage: GATEWAY_LISTEN_ADDRESS=IPV4 listen.pl PROXY_PORT CREDENTIAL_PORT\n" unless @ports == 2;
for my $port (@ports) {
  die "gateway: invalid port '$port'\n" unless $port =~ /\A[0-9]{1,5}\z/ && $port >= 1 && $port <= 65535;
  $port += 0;    # "03128" is a valid port but not a JSON number
}

# No default: listening on every interface would hand the credential port to the egress bridge.
my $address = $ENV{GATEWAY_LISTEN_ADDRESS} // '';
my $octet = qr/(?:25[0-5]|2[0-4][0-9]|1[0-9][0-9]|[1-9]?[0-9])/;
die "gateway: GATEWAY_LISTEN_ADDRESS must be the gateway's internal IPv4 address, got '$address'\n"
  unless $address =~ /\A$octet\.$octet\.$octet\.$octet\z/ && $address ne '0.0.0.0';
my $packed_address = inet_aton($address);

my (@fds, @sockets);
for my $port (@ports) {
  socket(my $sock, PF_INET, SOCK_STREAM, 0) or die "gateway: socket: $!\n";
  setsockopt($sock, SOL_SOCKET, SO_REUSEADDR, 1) or die "gateway: setsockopt: $!\n";
  bind($sock, pack_sockaddr_in($port, $packed_address)) or die "gateway: cannot bind $address port $port: $!\n";
  listen($sock, 511) or die "gateway: cannot listen on port $port: $!\n";
  push @fds, fileno($sock);
  push @sockets, $sock;    # the descriptor stays open while its handle lives
}

$| = 1;
print qq({"t":"listening","proxy_port":$ports[0],"credential_port":$ports[1]}\n);
$ENV{GATEWAY_LISTEN_FDS} = join(',', @fds);
exec { 'node' } 'node', '/opt/gateway/gateway.cjs' or die "gateway: cannot exec node: $!\n";
