/**
 * The chat template of microsoft/Phi-3-mini-4k-instruct (as in its GGUF's tokenizer.chat_template),
 * used when a file has none and written into synthetic models.
 */
export const PHI3_CHAT_TEMPLATE =
  "{{ bos_token }}{% for message in messages %}{% if (message['role'] == 'user') %}{{'<|user|>' + '\n' + message['content'] + '<|end|>' + '\n' + '<|assistant|>' + '\n'}}{% elif (message['role'] == 'assistant') %}{{message['content'] + '<|end|>' + '\n'}}{% endif %}{% endfor %}";

/**
 * Phi-4's chat format (microsoft/phi-4 tokenizer_config.json): `<|im_start|>role<|im_sep|>…<|im_end|>`,
 * used when a file has no template but its vocabulary has those tokens.
 */
export const PHI4_CHAT_TEMPLATE =
  "{% for message in messages %}{{'<|im_start|>' + message['role'] + '<|im_sep|>' + message['content'] + '<|im_end|>'}}{% endfor %}{% if add_generation_prompt %}{{'<|im_start|>assistant<|im_sep|>'}}{% endif %}";

/**
 * The chat template of microsoft/Phi-4-mini-instruct (its tokenizer_config.json): a system message
 * may carry `tools` (a JSON list of functions) printed between <|tool|> and <|/tool|>; every other
 * turn, `tool` results included, is `<|role|>content<|end|>`. Written into synthetic Phi-4-mini models.
 */
export const PHI4_MINI_CHAT_TEMPLATE =
  "{% for message in messages %}{% if message['role'] == 'system' and 'tools' in message and message['tools'] is not none %}{{ '<|' + message['role'] + '|>' + message['content'] + '<|tool|>' + message['tools'] + '<|/tool|>' + '<|end|>' }}{% else %}{{ '<|' + message['role'] + '|>' + message['content'] + '<|end|>' }}{% endif %}{% endfor %}{% if add_generation_prompt %}{{ '<|assistant|>' }}{% else %}{{ eos_token }}{% endif %}";
