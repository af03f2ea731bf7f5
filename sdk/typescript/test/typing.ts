// Type-checked by `tsc --strict` with the tests (never run): a misspelt code must fail type
// checking. Each `@ts-expect-error` below is required: tsc reports one that is not needed.

import * as dataxid from "../src/dataxid.js";
import * as rebuff from "../src/rebuff.js";

export function branch(e: dataxid.DataxidError): string {
  if (e.code === "quota_exceeded") return "upgrade";
  // @ts-expect-error a misspelt code has nothing in common with the codes
  if (e.code === "quota_exeeded") return "never";
  return "other";
}

export const ok: rebuff.Code = "api_key_missing";
// @ts-expect-error a misspelt code is not a Code
export const misspelt: rebuff.Code = "api_key_mising";
export const category: dataxid.Category = "quota_exceeded_error";
// @ts-expect-error nor a misspelt category a Category
export const notACategory: dataxid.Category = "quota_error";
export const cls: dataxid.ErrorClass = dataxid.errorClass("model_not_ready");
// @ts-expect-error errorClass takes codes only
export const wrong = dataxid.errorClass("model_not_redy");
