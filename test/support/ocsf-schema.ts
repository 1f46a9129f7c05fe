import { z } from 'zod';

/**
 * The fields OCSF (schema 1.4) requires or this export promises for the two
 * classes it writes, pinned from the schema's definitions (ocsf-schema:
 * events/base_event.json, events/network/network.json,
 * events/network/http_activity.json, profiles/security_control.json):
 * base event (category_uid, class_uid, activity_id, type_uid = class_uid *
 * 100 + activity_id, time, severity_id, metadata with product and version),
 * a network event's src/dst endpoint (at least one), the security control
 * outcome (action_id, disposition_id), and for HTTP Activity an http_request
 * (the class needs http_request or http_response).
 */

const HTTP_ACTIVITY_IDS = [0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 99];
const NETWORK_ACTIVITY_IDS = [0, 1, 2, 3, 4, 5, 6, 7, 99];
const SEVERITY_IDS = [0, 1, 2, 3, 4, 5, 6, 99];
const ACTION_IDS = [0, 1, 2, 3, 4, 99];
/** Allowed, Blocked, ..., Logged (17), ..., Error (27); Other 99. */
const DISPOSITION_IDS = [...Array.from({ length: 28 }, (_, i) => i), 99];

const Endpoint = z.object({
  hostname: z.string().optional(),
  name: z.string().optional(),
  port: z.number().int().optional(),
});

const Base = z.object({
  category_uid: z.literal(4),
  category_name: z.string().optional(),
  class_uid: z.union([z.literal(4001), z.literal(4002)]),
  activity_id: z.number().int(),
  type_uid: z.number().int(),
  time: z.number().int().positive(),
  severity_id: z
    .number()
    .int()
    .refine((v) => SEVERITY_IDS.includes(v)),
  metadata: z.object({
    version: z.string().regex(/^1\.\d+\.\d+/),
    product: z.object({ name: z.string().min(1), vendor_name: z.string().min(1), version: z.string().min(1) }),
    uid: z.string().optional(),
  }),
  src_endpoint: Endpoint.optional(),
  dst_endpoint: Endpoint.optional(),
  action_id: z
    .number()
    .int()
    .refine((v) => ACTION_IDS.includes(v)),
  disposition_id: z
    .number()
    .int()
    .refine((v) => DISPOSITION_IDS.includes(v)),
  status_id: z.number().int().optional(),
  message: z.string().optional(),
  http_request: z
    .object({
      http_method: z.string().min(1),
      url: z.object({ hostname: z.string(), port: z.number().int().optional() }),
    })
    .optional(),
  observables: z.array(z.object({ name: z.string(), type_id: z.number().int(), value: z.string() })).optional(),
  unmapped: z.record(z.unknown()).optional(),
});

export const OcsfRecordSchema = Base.superRefine((r, ctx) => {
  const problem = (message: string) => ctx.addIssue({ code: z.ZodIssueCode.custom, message });
  if (r.type_uid !== r.class_uid * 100 + r.activity_id) problem('type_uid is not class_uid * 100 + activity_id');
  const activities = r.class_uid === 4002 ? HTTP_ACTIVITY_IDS : NETWORK_ACTIVITY_IDS;
  if (!activities.includes(r.activity_id)) problem(`activity_id ${r.activity_id} is not one of class ${r.class_uid}`);
  if (!r.src_endpoint && !r.dst_endpoint) problem('a network event needs src_endpoint or dst_endpoint');
  if (r.class_uid === 4002 && !r.http_request) problem('HTTP Activity needs http_request');
});
