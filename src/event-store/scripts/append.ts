/**
 * Appends a batch of events to one bottle's stream with optimistic
 * concurrency, and stores the folded live state in the same atomic step.
 *
 * Input:
 *   KEYS[1] events stream     cb:bottle:{<identity>}:events
 *   KEYS[2] live state        cb:bottle:{<identity>}:state
 *   KEYS[3] bottles index     cb:bottles (zset)
 *   KEYS[4] bottle info       cb:bottle:{<identity>}:info (hash)
 *   KEYS[5] append causes     cb:bottle:{<identity>}:causes (hash)
 *
 *   ARGV[1] identity
 *   ARGV[2] expected last seq (0 for a new bottle)
 *   ARGV[3] live state JSON after folding the batch
 *   ARGV[4] index score: first event time in ms (used only if the bottle is not indexed yet)
 *   ARGV[5] cause: caller's id for this append ('' for none)
 *   ARGV[6] N, number of events
 *   ARGV[7] M, number of info field/value pairs (0 unless the batch starts the bottle)
 *   ARGV[8 .. 7+2M]            info field, value, ...
 *   ARGV[8+2M .. 7+2M+5N]      per event: seq, type, at, v, data JSON
 *
 * Output:
 *   { 'ok', newLastSeq }              appended; stream entry ids are '<seq>-0'
 *   { 'conflict', actualLastSeq }     nothing written: someone else appended first
 *   { 'duplicate', firstSeq, lastSeq } nothing written: this cause was appended before as these seqs
 *   { 'badseq', position }            the batch's seqs are not expected+1, expected+2, ...
 *
 * The stream is never trimmed: it is the bottle's source of truth. (KEYS[3] lies
 * outside the bottle's hash slot; claude-bottle targets one Redis, not a cluster.)
 */
export const APPEND_SCRIPT = `
local stream = KEYS[1]
local expected = tonumber(ARGV[2])
local cause = ARGV[5]
local nEvents = tonumber(ARGV[6])
local nInfo = tonumber(ARGV[7])

if cause ~= '' then
  local seen = redis.call('HGET', KEYS[5], cause)
  if seen then
    local first, last = string.match(seen, '^(%d+)-(%d+)$')
    return { 'duplicate', tonumber(first), tonumber(last) }
  end
end

local last = 0
local tail = redis.call('XREVRANGE', stream, '+', '-', 'COUNT', 1)
if #tail > 0 then
  last = tonumber(string.match(tail[1][1], '^(%d+)-'))
end
if last ~= expected then
  return { 'conflict', last }
end

local base = 8 + 2 * nInfo
for i = 0, nEvents - 1 do
  if tonumber(ARGV[base + 5 * i]) ~= expected + 1 + i then
    return { 'badseq', i }
  end
end

for i = 0, nEvents - 1 do
  local o = base + 5 * i
  redis.call('XADD', stream, ARGV[o] .. '-0',
    'type', ARGV[o + 1], 'at', ARGV[o + 2], 'v', ARGV[o + 3], 'data', ARGV[o + 4])
end

redis.call('SET', KEYS[2], ARGV[3])
redis.call('ZADD', KEYS[3], 'NX', ARGV[4], ARGV[1])
if nInfo > 0 then
  local fields = {}
  for i = 0, nInfo - 1 do
    fields[#fields + 1] = ARGV[8 + 2 * i]
    fields[#fields + 1] = ARGV[9 + 2 * i]
  end
  redis.call('HSET', KEYS[4], unpack(fields))
end
if cause ~= '' then
  redis.call('HSET', KEYS[5], cause, (expected + 1) .. '-' .. (expected + nEvents))
end
return { 'ok', expected + nEvents }
`;
