package kload

// invalidCases lists one fixture per kind of mistake under testdata/invalid with the
// exact diagnostics it must produce. A NAME.yaml fixture is loaded as flags/NAME.yaml
// beside the standard flagsync.yaml (siteCode pzllysfw2f; development, staging,
// production); a directory fixture is loaded as a whole repository, from the folder
// flagDir gives ("." if not listed).
var invalidCases = []struct {
	name string
	want []string
}{
	{"allocation_sum_over_100.yaml", []string{
		`flags/allocation_sum_over_100.yaml:11:11: environments.production.rolloutRules[0].trafficAllocations: traffic allocations add up to 110.5, more than 100`,
	}},
	{"allowed_values_on_string.yaml", []string{
		`flags/allowed_values_on_string.yaml:7:5: variables[0].allowedValues: not allowed unless type is ENUM`,
	}},
	{"boolean_variable_value.yaml", []string{
		`flags/boolean_variable_value.yaml:6:12: variables[0].value: must be true or false (variable "enabled" is BOOLEAN), got "yes"`,
	}},
	{"bucketing_custom_data.yaml", []string{
		`flags/bucketing_custom_data.yaml:4:3: bucketingKey: missing required field "customDataId" when bucketingKeyType is CUSTOM_DATA`,
	}},
	{"control_on_delivery_rule.yaml", []string{
		`flags/control_on_delivery_rule.yaml:11:9: environments.production.rolloutRules[0].controlVariationKey: not allowed when type is TARGETED_DELIVERY`,
	}},
	{"duplicate_flag", []string{
		`flags/checkout/new_checkout.yaml:1:13: featureKey: flag pzllysfw2f/new_checkout is also defined in flags/legacy/checkout.yaml:2:13`,
		`flags/legacy/checkout.yaml:2:13: featureKey: flag pzllysfw2f/new_checkout is also defined in flags/checkout/new_checkout.yaml:1:13`,
	}},
	{"duplicate_rule_names.yaml", []string{
		`flags/duplicate_rule_names.yaml:11:15: environments.production.rolloutRules[1].name: duplicate rule name "beta testers" (also rolloutRules[0]): rule names must be unique within an environment`,
	}},
	{"duplicate_tags.yaml", []string{
		`flags/duplicate_tags.yaml:3:28: tags[2]: duplicate value "checkout" (also item 0)`,
	}},
	{"duplicate_variable_keys.yaml", []string{
		`flags/duplicate_variable_keys.yaml:5:11: variables[1].key: duplicate variable key "color" (also variables[0])`,
	}},
	{"duplicate_variation_keys.yaml", []string{
		`flags/duplicate_variation_keys.yaml:6:10: variations[2].key: duplicate variation key "on" (also variations[1])`,
	}},
	{"empty_variations.yaml", []string{
		`flags/empty_variations.yaml:3:13: variations: must not be empty`,
	}},
	{"enum_value_not_allowed.yaml", []string{
		`flags/enum_value_not_allowed.yaml:13:16: variations[1].variables[0].value: must be one of small, medium, large (variable "size" is ENUM), got "Large"; did you mean "large"?`,
	}},
	{"enum_without_allowed_values.yaml", []string{
		`flags/enum_without_allowed_values.yaml:4:5: variables[0]: missing required field "allowedValues" when type is ENUM`,
	}},
	{"environment_configurations.yaml", []string{
		`flags/environment_configurations.yaml:4:1: environmentConfigurations: unknown field "environmentConfigurations"; write environments as a mapping keyed by environment key: environments: {production: {...}}`,
	}},
	{"experiment_with_variation_key.yaml", []string{
		`flags/experiment_with_variation_key.yaml:10:9: environments.production.rolloutRules[0].variationKey: not allowed when type is EXPERIMENTATION`,
	}},
	{"experiment_without_allocations.yaml", []string{
		`flags/experiment_without_allocations.yaml:8:9: environments.production.rolloutRules[0]: missing required field "trafficAllocations" when type is EXPERIMENTATION`,
	}},
	{"explicit_tag.yaml", []string{
		`flags/explicit_tag.yaml:2:7: name: YAML tag !!binary is not supported: remove it (quote text to keep it a string)`,
	}},
	{"exposition_negative.yaml", []string{
		`flags/exposition_negative.yaml:10:21: environments.production.rolloutRules[0].exposition: must be >= 0`,
	}},
	{"exposition_over_100.yaml", []string{
		`flags/exposition_over_100.yaml:10:21: environments.production.rolloutRules[0].exposition: must be <= 100`,
	}},
	{"feature_key_pattern.yaml", []string{
		`flags/feature_key_pattern.yaml:1:13: featureKey: "New-Checkout" is not valid: lower-case letters, digits, '_' and '-' only`,
	}},
	{"infinite_number.yaml", []string{
		`flags/infinite_number.yaml:10:21: environments.production.rolloutRules[0].exposition: must be a finite number, got .inf`,
	}},
	{"integer_with_fraction.yaml", []string{
		`flags/integer_with_fraction.yaml:3:20: attributionWindow: must be a whole number, got 6048.5`,
	}},
	{"json_variable_value.yaml", []string{
		`flags/json_variable_value.yaml:6:12: variables[0].value: must be valid JSON (variable "config" is JSON): invalid character '}' looking for beginning of object key string`,
	}},
	{"leading_zero_number.yaml", []string{
		`flags/leading_zero_number.yaml:10:20: environments.production.rolloutRules[0].segmentId: number 0403694 has a leading zero, which YAML may read as octal: write it without the zero, or quote it if it is text`,
	}},
	{"misplaced_settings", []string{
		`team/flagsync.yaml:1:1: flagsync.yaml is read only at the root of the flag folder (.): move it there, or rename it if it is a flag`,
	}},
	{"missing_default_variation.yaml", []string{
		`flags/missing_default_variation.yaml:6:5: environments.production: missing required field "defaultVariationKey"`,
	}},
	{"missing_name.yaml", []string{
		`flags/missing_name.yaml:1:1: missing required field "name"`,
	}},
	{"missing_site_code", []string{
		`new_checkout.yaml:1:1: missing required field "siteCode" (or set a default siteCode in flagsync.yaml)`,
	}},
	{"name_not_string.yaml", []string{
		`flags/name_not_string.yaml:2:7: name: must be a string, got 2024; quote it: "2024"`,
		`flags/name_not_string.yaml:3:7: tags: must be a list, got "checkout"`,
	}},
	{"name_too_long.yaml", []string{
		`flags/name_too_long.yaml:2:7: name: must be at most 100 characters long, got 116`,
	}},
	{"null_description.yaml", []string{
		`flags/null_description.yaml:3:13: description: must be a string, got null`,
	}},
	{"number_variable_value.yaml", []string{
		`flags/number_variable_value.yaml:9:33: variations[1].variables[0].value: must be a number such as 42 or -1.5 (variable "max_items" is NUMBER), got "ten"`,
	}},
	{"progressive_without_exposition.yaml", []string{
		`flags/progressive_without_exposition.yaml:8:9: environments.production.rolloutRules[0]: missing required field "exposition" when type is PROGRESSIVE_DELIVERY`,
	}},
	{"release_bad_date.yaml", []string{
		`flags/release_bad_date.yaml:13:24: environments.production.rolloutRules[0].release.releaseFrom: "2025-12-11" is not valid: a date-time such as 2025-12-11T11:58:01`,
		`flags/release_bad_date.yaml:14:22: environments.production.rolloutRules[0].release.releaseTo: "2025-13-40T11:58:01" is not a valid date-time`,
	}},
	{"release_window.yaml", []string{
		`flags/release_window.yaml:14:22: environments.production.rolloutRules[0].release.releaseTo: must be after releaseFrom (2025-12-13T11:58:01)`,
		`flags/release_window.yaml:15:21: environments.production.rolloutRules[0].release.timeZone: unknown time zone "Europe/Pairs": use an IANA name such as Europe/Paris or UTC`,
	}},
	{"rollback_condition.yaml", []string{
		`flags/rollback_condition.yaml:12:13: environments.production.rolloutRules[0].rollbackConditions[0]: missing required field "matchValue"`,
		`flags/rollback_condition.yaml:13:23: environments.production.rolloutRules[0].rollbackConditions[0].criteria: must be one of UPLIFT, DOWNLIFT, CONVERSION_RATE, got "CONVERSION"; did you mean "CONVERSION_RATE"?`,
		`flags/rollback_condition.yaml:15:26: environments.production.rolloutRules[0].rollbackConditions[0].recipients[0]: "not-an-email" is not a valid email`,
	}},
	{"rule_type_enum.yaml", []string{
		`flags/rule_type_enum.yaml:9:15: environments.production.rolloutRules[0].type: must be one of TARGETED_DELIVERY, PROGRESSIVE_DELIVERY, EXPERIMENTATION, got "TARGETED"; did you mean "TARGETED_DELIVERY"?`,
	}},
	{"server_owned_id.yaml", []string{
		`flags/server_owned_id.yaml:10:9: environments.production.rolloutRules[0].id: unknown field "id"; ids are set by Kameleoon and not written in flag files (rules are identified by name)`,
	}},
	{"settings_invalid", []string{
		`flagsync.yaml:1:11: siteCode: must be exactly 10 characters long, got 9`,
		`flagsync.yaml:2:1: environment: unknown field "environment"; did you mean "environments"?`,
		`flagsync.yaml:3:8: prune: must be true or false, got "no"`,
	}},
	{"site_code_length.yaml", []string{
		`flags/site_code_length.yaml:1:11: siteCode: must be exactly 10 characters long, got 3`,
	}},
	{"state_lower_case.yaml", []string{
		`flags/state_lower_case.yaml:11:16: environments.production.rolloutRules[0].state: must be one of ACTIVE, PAUSED, got "active"; did you mean "ACTIVE"?`,
	}},
	{"status_not_state.yaml", []string{
		`flags/status_not_state.yaml:11:9: environments.production.rolloutRules[0].status: unknown field "status"; did you mean "state"? (the API reads a rule's state back as status)`,
	}},
	{"targeted_without_variation.yaml", []string{
		`flags/targeted_without_variation.yaml:8:9: environments.production.rolloutRules[0]: missing required field "variationKey" when type is TARGETED_DELIVERY`,
	}},
	{"unknown_allocation_variation.yaml", []string{
		`flags/unknown_allocation_variation.yaml:13:28: environments.production.rolloutRules[0].trafficAllocations[1].variationKey: unknown variation "onn"; did you mean "on"?`,
	}},
	{"unknown_default_variation.yaml", []string{
		`flags/unknown_default_variation.yaml:7:26: environments.staging.defaultVariationKey: unknown variation "of"; did you mean "off"?`,
	}},
	{"unknown_environment.yaml", []string{
		`flags/unknown_environment.yaml:5:3: environments.prod: unknown environment "prod"; did you mean "production"? (flagsync.yaml lists development, staging, production)`,
	}},
	{"unknown_field_typo.yaml", []string{
		`flags/unknown_field_typo.yaml:13:9: environments.production.rolloutRules[0].exposure: unknown field "exposure"; did you mean "exposition"?`,
	}},
	{"unknown_rule_variation.yaml", []string{
		`flags/unknown_rule_variation.yaml:10:23: environments.production.rolloutRules[0].variationKey: unknown variation "green"; the flag's variations are off, on`,
	}},
	{"value_is_mapping.yaml", []string{
		`flags/value_is_mapping.yaml:6:12: variables[0].value: must be a string, got a mapping; to give a JSON value, quote it: value: '{"a": 1}'`,
	}},
	{"variation_variable_unknown.yaml", []string{
		`flags/variation_variable_unknown.yaml:9:15: variations[1].variables[0].key: unknown variable "button_colour"; did you mean "button_color"?`,
	}},
	{"yaml_anchor_alias.yaml", []string{
		`flags/yaml_anchor_alias.yaml:5:12: environments.staging: anchors (&prod) are not supported: write the value out in full`,
		`flags/yaml_anchor_alias.yaml:7:15: environments.production: aliases (*prod) are not supported: write the value out in full`,
	}},
	{"yaml_bad_indentation.yaml", []string{
		`flags/yaml_bad_indentation.yaml:5:4: YAML syntax error: bad indentation: this line is indented 3 spaces, which matches no enclosing block (did not find expected '-' indicator; the block opens on line 3)`,
	}},
	{"yaml_comment_only.yaml", []string{
		`flags/yaml_comment_only.yaml:1:1: file is empty: a flag file needs at least featureKey, name and variations`,
	}},
	{"yaml_duplicate_key.yaml", []string{
		`flags/yaml_duplicate_key.yaml:4:1: name: duplicate key "name" (first defined at line 2)`,
	}},
	{"yaml_empty.yaml", []string{
		`flags/yaml_empty.yaml:1:1: file is empty: a flag file needs at least featureKey, name and variations`,
	}},
	{"yaml_merge_key.yaml", []string{
		`flags/yaml_merge_key.yaml:6:5: environments.production: merge keys (<<) are not supported: write the fields out in full`,
	}},
	{"yaml_multi_document.yaml", []string{
		`flags/yaml_multi_document.yaml:4:1: a second YAML document (after ---): a file holds exactly one flag; move it to its own file`,
	}},
	{"yaml_non_string_key.yaml", []string{
		`flags/yaml_non_string_key.yaml:5:1: mapping keys must be strings, got 2024; quote it: "2024"`,
	}},
	{"yaml_syntax_error.yaml", []string{
		`flags/yaml_syntax_error.yaml:2:1: YAML syntax error: found unexpected end of stream`,
	}},
	{"yaml_tab_indent.yaml", []string{
		`flags/yaml_tab_indent.yaml:4:1: tab character in indentation: YAML indents with spaces only`,
	}},
	{"yaml_top_level_list.yaml", []string{
		`flags/yaml_top_level_list.yaml:1:1: the top level must be a mapping of flag fields, got a list`,
	}},
	{"variation_key_not_string.yaml", []string{
		`flags/variation_key_not_string.yaml:4:10: variations[0].key: must be a string, got 1; quote it: "1"`,
		`flags/variation_key_not_string.yaml:5:10: variations[1].key: must be a string, got 2; quote it: "2"`,
	}},
	{"ignore_paths.yaml", []string{
		`flags/ignore_paths.yaml:23:45: ignore[4]: ignore path "environments.production.rolloutRules[*].expositon": unknown field "expositon" in a rule; did you mean "exposition"?`,
		`flags/ignore_paths.yaml:24:18: ignore[5]: ignore path "environments.featureEnabled": environments is a map keyed by environment: name one, or * for every environment; write "environments.*.featureEnabled"`,
		`flags/ignore_paths.yaml:25:18: ignore[6]: ignore path "environments.staging.featureEnabled": environment "staging" is not in this flag file (the file lists production); an environment the file does not list is left alone anyway`,
		`flags/ignore_paths.yaml:26:41: ignore[7]: ignore path "environments.production.rolloutRules[name=beta tester].state": no rule named "beta tester" in environment production; did you mean "beta testers"?`,
		`flags/ignore_paths.yaml:27:41: ignore[8]: ignore path "environments.production.rolloutRules[0].state": rules are matched by name, not by position: select them with [*] or [name=…]; write "environments.production.rolloutRules[*].state"`,
		`flags/ignore_paths.yaml:28:20: ignore[9]: ignore path "environments.*.rolloutRules.exposition": rolloutRules is a list: select rules with [*] or by name, [name=…]; write "environments.*.rolloutRules[*].exposition"`,
		`flags/ignore_paths.yaml:29:44: ignore[10]: ignore path "environments.*.rolloutRules[*].release.releaseTo": flagsync compares release as a whole (releaseFrom, releaseTo, timeZone): ignore it as a whole; write "environments.*.rolloutRules[*].release"`,
		`flags/ignore_paths.yaml:30:5: ignore[11]: ignore path "featureKey": featureKey cannot be ignored: it identifies the flag`,
		`flags/ignore_paths.yaml:31:14: ignore[12]: ignore path "variables[key=button_colour].value": no variable with key "button_colour" in this flag file; did you mean "button_color"?`,
		`flags/ignore_paths.yaml:32:29: ignore[13]: ignore path "environments.production.rolloutRules[*]": a path ends at a field: ignore a field of the rules, or the whole rolloutRules; write "environments.production.rolloutRules"`,
		`flags/ignore_paths.yaml:33:10: ignore[14]: ignore path "tags[0]": tags is compared as a set: ignore it as a whole; write "tags"`,
	}},
	{"ignore_in_settings", []string{
		`flags/flagsync.yaml:5:18: ignore[1]: ignore path "environments.prod.featureEnabled": unknown environment "prod"; did you mean "production"? (flagsync.yaml lists development, staging, production)`,
		`flags/flagsync.yaml:6:5: ignore[2]: ignore path "rolloutRules[*].exposition": rolloutRules is a field of an environment; write "environments.*.rolloutRules[*].exposition"`,
		`flags/flagsync.yaml:8:32: ignore[4]: ignore path "environments.*.rolloutRules[name=a [b]].exposition": a key with '[' must be quoted: [name="a [b]"]`,
	}},
	{"settings_two_files", []string{
		`flagsync.yml:1:1: both flagsync.yaml and flagsync.yml exist: keep one`,
	}},
}
