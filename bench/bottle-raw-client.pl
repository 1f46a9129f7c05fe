#!/usr/bin/perl
# Sends raw HTTP exchanges from inside a bottle to its gateway's proxy ($HTTP_PROXY), byte for byte as
# given (so a request line, a missing Host, chunk boundaries and WebSocket frames are exactly the case's).
# Input, one exchange a line: id TAB piece,piece,... TAB frames  (each base64; frames may be empty); an empty
# piece means "read a response head first" (a CONNECT answered before the request inside the tunnel).
# Output, one line each: id TAB status TAB closed-after-frames (1/0).
use strict;
use warnings;
use IO::Socket::INET;
use IO::Select;
use MIME::Base64;
use Time::HiRes qw(sleep time);

my ($proxy_host, $proxy_port) = ($ENV{HTTP_PROXY} // $ENV{http_proxy} // '') =~ m{^http://([^:/]+):(\d+)};
die "no HTTP_PROXY\n" unless $proxy_port;
$| = 1;

sub read_head {
  my ($sock, $deadline) = @_;
  my $sel = IO::Select->new($sock);
  my $buf = '';
  while (time < $deadline && index($buf, "\r\n\r\n") < 0) {
    last unless $sel->can_read($deadline - time);
    my $n = sysread($sock, my $chunk, 65536);
    last unless $n;
    $buf .= $chunk;
  }
  return $buf;
}

sub closed_within {
  my ($sock, $seconds) = @_;
  my $sel = IO::Select->new($sock);
  my $deadline = time + $seconds;
  while (time < $deadline) {
    return 0 unless $sel->can_read($deadline - time);
    my $n = sysread($sock, my $chunk, 65536);
    return 1 unless $n;
  }
  return 0;
}

while (my $line = <STDIN>) {
  chomp $line;
  my ($id, $pieces, $frames) = split /\t/, $line, -1;
  my $sock = IO::Socket::INET->new(PeerAddr => $proxy_host, PeerPort => $proxy_port, Proto => 'tcp', Timeout => 5);
  unless ($sock) { print "$id\tconnect-failed\t0\n"; next; }
  my @parts = split /,/, $pieces, -1;
  my $status = 'none';
  for my $i (0 .. $#parts) {
    if ($parts[$i] eq '') {
      ($status) = read_head($sock, time + 8) =~ m{^HTTP/\d\.\d (\d{3})};
      $status //= 'none';
      last unless $status eq '200';
      next;
    }
    syswrite($sock, decode_base64($parts[$i]));
    sleep 0.05 if $i < $#parts;
  }
  if ($parts[-1] ne '' && ($status eq 'none' || $status eq '200')) {
    ($status) = read_head($sock, time + 8) =~ m{^HTTP/\d\.\d (\d{3})};
    $status //= 'none';
  }
  my $closed = 0;
  if ($status eq '101' && $frames) {
    syswrite($sock, decode_base64($frames));
    $closed = closed_within($sock, 1.5);
  }
  # An upgraded connection stays open for an answer; this side closes it once the frames are sent.
  close $sock;
  print "$id\t$status\t$closed\n";
}
